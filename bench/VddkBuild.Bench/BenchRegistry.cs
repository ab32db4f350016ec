using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Bench;

/// <summary>
/// One docker-registry for the whole run, behind a <see cref="CountingProxy"/> that every tool talks to, so requests
/// and uploaded bytes are counted the same way for podman, the .NET SDK, VddkBuild and the floor. Uploaded bytes are
/// the request bodies the proxy forwarded (counted by wrapping each body; chunked bodies have no Content-Length).
/// </summary>
internal sealed class BenchRegistry : IAsyncDisposable
{
    private readonly DockerRegistryProcess _registry;
    private readonly CountingProxy _proxy;
    private long _bodyBytes;

    private BenchRegistry(DockerRegistryProcess registry, CountingProxy proxy)
    {
        _registry = registry;
        _proxy = proxy;
        _proxy.Fault = context =>
        {
            context.Request.Body = new CountingReadStream(context.Request.Body, this);
            return Task.FromResult(false); // never answers: every request is forwarded
        };
    }

    /// <summary>host:port every tool pushes to (the proxy).</summary>
    public string Authority => _proxy.Authority;

    public string StorageDirectory => _registry.StorageDirectory;

    public static async Task<BenchRegistry> StartAsync()
    {
        var registry = await DockerRegistryProcess.StartAsync();
        try
        {
            var proxy = await CountingProxy.StartAsync(registry.BaseUri);
            return new BenchRegistry(registry, proxy);
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
    }

    public Traffic Snapshot() => new(_proxy.Requests.Count, Interlocked.Read(ref _bodyBytes), _proxy.Requests.Count(r => r.SentBlobData));

    public async ValueTask DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _registry.DisposeAsync();
    }

    /// <summary>Requests, request-body bytes and blob-data requests seen so far; subtract two snapshots for one command's share.</summary>
    public readonly record struct Traffic(int Requests, long BodyBytes, int BlobUploads)
    {
        public static Traffic operator -(Traffic after, Traffic before) =>
            new(after.Requests - before.Requests, after.BodyBytes - before.BodyBytes, after.BlobUploads - before.BlobUploads);
    }

    private sealed class CountingReadStream(Stream inner, BenchRegistry owner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Count(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken));

        private int Count(int read)
        {
            Interlocked.Add(ref owner._bodyBytes, read);
            return read;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
