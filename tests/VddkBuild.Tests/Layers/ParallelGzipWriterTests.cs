using System.IO.Compression;
using VddkBuild.Layers;

namespace VddkBuild.Tests.Layers;

public sealed class ParallelGzipWriterTests
{
    private const int Chunk = 64 * 1024;

    private static async Task<byte[]> CompressAsync(byte[] data, int workers, int writeSize, int chunkSize = Chunk)
    {
        var output = new MemoryStream();
        await using (var gzip = new ParallelGzipWriter(output, CompressionLevel.Optimal, chunkSize, workers))
        {
            for (var offset = 0; offset < data.Length; offset += writeSize)
            {
                await gzip.WriteAsync(data.AsMemory(offset, Math.Min(writeSize, data.Length - offset)));
            }
            await gzip.FinishAsync(CancellationToken.None);
        }
        return output.ToArray();
    }

    private static byte[] Gunzip(byte[] gz)
    {
        using var reader = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
        var result = new MemoryStream();
        reader.CopyTo(result);
        return result.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk - 1)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData(5 * Chunk + 12_345)]
    public async Task Output_decompresses_to_the_input(int length)
    {
        var data = VddkEntries.Bytes("parallel", length);
        Assert.Equal(data, Gunzip(await CompressAsync(data, workers: 2, writeSize: 10_000)));
    }

    [Fact]
    public async Task Bytes_do_not_depend_on_workers_or_on_how_the_input_was_written()
    {
        var data = VddkEntries.Bytes("deterministic", 7 * Chunk + 999);
        var reference = await CompressAsync(data, workers: 1, writeSize: data.Length);

        Assert.Equal(reference, await CompressAsync(data, workers: 2, writeSize: 512));
        Assert.Equal(reference, await CompressAsync(data, workers: 4, writeSize: 100_003));
        Assert.Equal(reference, await CompressAsync(data, workers: 2, writeSize: Chunk));
    }

    [Fact]
    public async Task Each_chunk_is_one_member_so_the_chunk_size_is_part_of_the_identity()
    {
        var data = VddkEntries.Bytes("members", 3 * Chunk + 1);
        var gz = await CompressAsync(data, workers: 2, writeSize: 4096);

        Assert.Equal(4, CountMembers(gz));
        Assert.NotEqual(gz, await CompressAsync(data, workers: 2, writeSize: 4096, chunkSize: 2 * Chunk));
    }

    [Fact]
    public async Task Empty_input_is_one_valid_empty_member()
    {
        var gz = await CompressAsync([], workers: 2, writeSize: 1);
        Assert.Equal(1, CountMembers(gz));
        Assert.Empty(Gunzip(gz));
    }

    [Fact]
    public async Task Gnu_gzip_reads_all_members()
    {
        var data = VddkEntries.Bytes("gnu members", 4 * Chunk + 77);
        var path = Path.Combine(Path.GetTempPath(), $"parallel-{Guid.NewGuid():N}.gz");
        try
        {
            await File.WriteAllBytesAsync(path, await CompressAsync(data, workers: 2, writeSize: 30_000));
            CliTool.Run("gzip", "-t", path);
            var (_, raw) = CliTool.Run("gzip", "-dc", path);
            Assert.Equal(data, raw);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task An_output_failure_stops_later_writes()
    {
        var gzip = new ParallelGzipWriter(new FailingStream(), CompressionLevel.Fastest, Chunk, workers: 1);
        var data = VddkEntries.Bytes("fail", 4 * Chunk);
        await Assert.ThrowsAsync<IOException>(async () =>
        {
            await gzip.WriteAsync(data);
            await gzip.FinishAsync(CancellationToken.None);
        });
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await gzip.WriteAsync(data));
        await gzip.DisposeAsync();
    }

    /// <summary>Counts members by finding where each one ends (the next identical header after a member that inflates completely).</summary>
    private static int CountMembers(byte[] gz)
    {
        var count = 0;
        for (var offset = 0; offset < gz.Length; offset = NextMemberStart(gz, offset))
        {
            Assert.Equal(0x1f, gz[offset]);
            Assert.Equal(0x8b, gz[offset + 1]);
            count++;
        }
        return count;
    }

    private static int NextMemberStart(byte[] gz, int start)
    {
        // Our members all use the same 10-byte header, so the next one starts where that header next appears and
        // the bytes before it form a member that inflates completely.
        var header = gz.AsSpan(start, 10).ToArray();
        for (var i = start + 18; i <= gz.Length - 10; i++)
        {
            if (gz.AsSpan(i, 10).SequenceEqual(header) && InflatesCompletely(gz, start, i))
            {
                return i;
            }
        }
        return gz.Length;
    }

    private static bool InflatesCompletely(byte[] gz, int start, int end)
    {
        try
        {
            using var reader = new GZipStream(new MemoryStream(gz, start, end - start), CompressionMode.Decompress);
            reader.CopyTo(Stream.Null);
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    private sealed class FailingStream : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) { }
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("disk full");
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => throw new IOException("disk full");
    }
}
