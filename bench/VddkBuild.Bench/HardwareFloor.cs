using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace VddkBuild.Bench;

/// <summary>
/// The least any tool must do to publish the archive's content as a layer: read the archive, sha256 it, gunzip it once
/// (for the diffID) while hashing the tar, and send its bytes to the registry in one monolithic upload (POST + PUT).
/// Done in this process, without MSBuild, tar parsing, checks, a base image, a config or a manifest.
/// </summary>
internal static class HardwareFloor
{
    public static async Task<Sample> RunAsync(BenchRegistry registry, string archive, int repetition)
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromMinutes(10) };
        var before = registry.Snapshot();
        var stopwatch = Stopwatch.StartNew();

        byte[] digest;
        using (var fileHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        using (var tarHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            await using var file = new FileStream(archive, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            await using var tee = new HashingReader(file, fileHash);
            await using var gzip = new GZipStream(tee, CompressionMode.Decompress);
            var buffer = new byte[1 << 17];
            int read;
            while ((read = await gzip.ReadAsync(buffer)) > 0)
            {
                tarHash.AppendData(buffer, 0, read);
            }
            while (await tee.ReadAsync(buffer) > 0)
            {
                // bytes after the gzip end count for the file digest
            }
            digest = fileHash.GetHashAndReset();
            _ = tarHash.GetHashAndReset();
        }

        var digestText = "sha256:" + Convert.ToHexStringLower(digest);
        var start = new Uri($"http://{registry.Authority}/v2/floor-{repetition}/blobs/uploads/");
        using var post = await client.PostAsync(start, null);
        if (post.StatusCode != HttpStatusCode.Accepted || post.Headers.Location is null)
        {
            throw new InvalidOperationException($"floor upload: POST answered {(int)post.StatusCode}");
        }
        var location = post.Headers.Location.IsAbsoluteUri ? post.Headers.Location : new Uri(start, post.Headers.Location);
        var put = new UriBuilder(location);
        put.Query = (string.IsNullOrEmpty(put.Query) ? "" : put.Query.TrimStart('?') + "&") + "digest=" + Uri.EscapeDataString(digestText);
        await using (var body = new FileStream(archive, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan))
        {
            using var content = new StreamContent(body, 1 << 16);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Headers.ContentLength = body.Length;
            using var response = await client.PutAsync(put.Uri, content);
            if (response.StatusCode != HttpStatusCode.Created)
            {
                throw new InvalidOperationException($"floor upload: PUT answered {(int)response.StatusCode}");
            }
        }
        stopwatch.Stop();
        var traffic = registry.Snapshot() - before;
        // No peak RSS: this runs inside the benchmark's own process, whose memory is not the floor's.
        return new Sample(stopwatch.Elapsed, stopwatch.Elapsed, traffic.BodyBytes, traffic.Requests, traffic.BlobUploads, 0);
    }

    private sealed class HashingReader(Stream inner, IncrementalHash hash) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var read = inner.Read(buffer, offset, count);
            hash.AppendData(buffer, offset, read);
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            hash.AppendData(buffer.Span[..read]);
            return read;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
