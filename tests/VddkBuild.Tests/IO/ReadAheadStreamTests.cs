using System.IO.Compression;
using VddkBuild.IO;

namespace VddkBuild.Tests.IO;

public sealed class ReadAheadStreamTests
{
    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        new Random(11).NextBytes(bytes);
        return bytes;
    }

    [Theory]
    [InlineData(0, 256 * 1024)]
    [InlineData(1, 256 * 1024)]
    [InlineData(256 * 1024, 256 * 1024)]   // exactly one buffer
    [InlineData(3_000_001, 256 * 1024)]
    [InlineData(100_000, 7)]               // many tiny buffers
    public async Task The_reader_gets_exactly_the_inner_streams_bytes(int length, int bufferSize)
    {
        var data = Pattern(length);
        await using var ahead = new ReadAheadStream(new MemoryStream(data), bufferSize, depth: 2);
        using var copy = new MemoryStream();
        await ahead.CopyToAsync(copy, 13_000);
        Assert.Equal(data, copy.ToArray());
        Assert.Equal(0, await ahead.ReadAsync(new byte[10])); // the end stays the end
    }

    [Fact]
    public void Synchronous_reads_get_the_same_bytes()
    {
        var data = Pattern(1_000_000);
        using var ahead = new ReadAheadStream(new MemoryStream(data), 64 * 1024);
        using var copy = new MemoryStream();
        ahead.CopyTo(copy, 5000);
        Assert.Equal(data, copy.ToArray());
    }

    [Fact]
    public async Task A_failure_of_the_inner_stream_reaches_the_reader_after_every_byte_read_before_it()
    {
        var data = Pattern(1_000_000);
        await using var ahead = new ReadAheadStream(new FailingAfter(new MemoryStream(data), 700_001), 256 * 1024);
        var buffer = new byte[50_000];
        long total = 0;
        var error = await Assert.ThrowsAsync<InvalidDataException>(async () =>
        {
            int read;
            while ((read = await ahead.ReadAsync(buffer)) > 0)
            {
                total += read;
            }
        });
        Assert.Equal("broken at 700001", error.Message);
        Assert.Equal(700_001, total);
    }

    [Fact]
    public async Task Decompressing_ahead_gives_the_same_bytes_as_decompressing_in_place()
    {
        var data = Pattern(2_000_000);
        Array.Fill(data, (byte)'a', 0, 1_000_000);
        using var packed = new MemoryStream();
        await using (var gzip = new GZipStream(packed, CompressionLevel.Fastest, leaveOpen: true))
        {
            await gzip.WriteAsync(data);
        }
        packed.Position = 0;
        await using var ahead = new ReadAheadStream(new GZipStream(packed, CompressionMode.Decompress));
        using var copy = new MemoryStream();
        await ahead.CopyToAsync(copy);
        Assert.Equal(data, copy.ToArray());
    }

    [Fact]
    public async Task Disposing_midway_stops_the_thread_before_the_inner_stream_is_closed()
    {
        var inner = new SlowStream(Pattern(50_000_000));
        var ahead = new ReadAheadStream(inner, 64 * 1024, depth: 2);
        Assert.Equal(1000, await ahead.ReadAsync(new byte[1000]));
        await ahead.DisposeAsync();
        Assert.True(inner.Disposed);
        Assert.False(inner.ReadAfterDispose);
        Assert.True(inner.Position < 50_000_000); // it did not read everything ahead
    }

    [Fact]
    public async Task A_reader_waiting_for_data_honours_cancellation()
    {
        await using var ahead = new ReadAheadStream(new BlockingStream(), 1024);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => _ = await ahead.ReadAsync(new byte[10], cancel.Token));
    }

    private sealed class FailingAfter(Stream inner, long limit) : ReadOnlyStream
    {
        private long _position;

        public override int Read(Span<byte> buffer)
        {
            if (_position >= limit)
            {
                throw new InvalidDataException($"broken at {limit}");
            }
            var read = inner.Read(buffer[..(int)Math.Min(buffer.Length, limit - _position)]);
            _position += read;
            return read;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));
    }

    private sealed class SlowStream(byte[] data) : ReadOnlyStream
    {
        private readonly MemoryStream _inner = new(data);

        public bool Disposed { get; private set; }
        public bool ReadAfterDispose { get; private set; }
        public override long Position { get => _inner.Position; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            ReadAfterDispose |= Disposed;
            Thread.Sleep(1);
            return _inner.Read(buffer[..Math.Min(buffer.Length, 4096)]);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }

    private sealed class BlockingStream : ReadOnlyStream
    {
        private readonly ManualResetEventSlim _never = new();

        public override int Read(Span<byte> buffer)
        {
            _never.Wait(TimeSpan.FromSeconds(1));
            return 0;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));
    }
}
