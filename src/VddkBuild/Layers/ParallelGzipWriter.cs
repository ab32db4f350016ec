using System.Buffers;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Layers;

/// <summary>
/// Gzip on several cores: the input is cut into chunks of a fixed number of uncompressed bytes, each chunk becomes an
/// independent gzip member (<see cref="GzipMemberWriter"/>) compressed on the thread pool, and the members are written
/// to the output in input order. Concatenated members are one valid gzip stream (RFC 1952 §2.2; GNU gzip, Go's
/// compress/gzip as used by containerd and CRI-O, and .NET read them all).
/// </summary>
/// <remarks>
/// The output depends only on the input bytes, the level and <see cref="ChunkSize"/> - never on how the input was
/// split into Write calls or on the number of workers - so layers stay byte-identical run to run and machine to
/// machine (for one zlib build). Memory is bounded: at most <c>workers + 1</c> chunks are in flight, each holding its
/// input and its compressed output. The cost of independent members is that each starts without the previous
/// chunk's 32 KiB window; at 1 MiB chunks that costs well under 1% of size.
/// </remarks>
internal sealed class ParallelGzipWriter : Stream
{
    /// <summary>1 MiB: small enough for two cores to share even a 20 MB layer, large enough that the lost window does not matter.</summary>
    public const int DefaultChunkSize = 1 << 20;

    private readonly Stream _output;
    private readonly CompressionLevel _level;
    private readonly int? _zlibLevel;
    private readonly int _maxInFlight;
    private readonly Queue<Task<CompressedChunk>> _inFlight = new();
    private byte[] _current;
    private int _currentLength;
    private int _chunksSubmitted;
    private bool _finished;
    private bool _faulted;

    /// <param name="workers">Chunks compressed at once; 1 compresses on the pool one chunk at a time (still overlapping the producer).</param>
    /// <param name="zlibLevel">An exact zlib level (1-9); when set it replaces <paramref name="level"/>.</param>
    public ParallelGzipWriter(Stream output, CompressionLevel level, int chunkSize = DefaultChunkSize, int workers = 0, int? zlibLevel = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 4096);
        _output = output;
        _level = level;
        _zlibLevel = zlibLevel;
        ChunkSize = chunkSize;
        _maxInFlight = workers > 0 ? workers : DefaultWorkers;
        _current = ArrayPool<byte>.Shared.Rent(chunkSize);
    }

    /// <summary>One worker per core, at most 8: beyond that the producer (gunzip of the archive + tar) is the limit.</summary>
    public static int DefaultWorkers => Math.Clamp(Environment.ProcessorCount, 1, 8);

    public int ChunkSize { get; }

    /// <summary>Uncompressed bytes accepted so far.</summary>
    public long UncompressedLength { get; private set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_finished;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var copy = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            buffer.CopyTo(copy);
            WriteAsync(copy.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_finished, this);
        if (_faulted)
        {
            throw new InvalidOperationException("An earlier chunk failed to compress; this gzip stream is incomplete.");
        }
        while (!buffer.IsEmpty)
        {
            int take = Math.Min(buffer.Length, ChunkSize - _currentLength);
            buffer.Span[..take].CopyTo(_current.AsSpan(_currentLength));
            _currentLength += take;
            UncompressedLength += take;
            buffer = buffer[take..];
            if (_currentLength == ChunkSize)
            {
                await SubmitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Compresses what is left and writes every member, in order. An empty input gives one empty member.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask FinishAsync(CancellationToken cancellationToken)
    {
        if (_finished)
        {
            return;
        }
        if (_currentLength > 0 || _chunksSubmitted == 0)
        {
            await SubmitAsync(cancellationToken).ConfigureAwait(false);
        }
        while (_inFlight.Count > 0)
        {
            await WriteOldestAsync(cancellationToken).ConfigureAwait(false);
        }
        _finished = true;
        ArrayPool<byte>.Shared.Return(_current);
        _current = [];
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask SubmitAsync(CancellationToken cancellationToken)
    {
        var input = _current;
        var length = _currentLength;
        var level = _level;
        var zlibLevel = _zlibLevel;
        _inFlight.Enqueue(Task.Run(() => Compress(input, length, level, zlibLevel), CancellationToken.None));
        _chunksSubmitted++;
        _current = ArrayPool<byte>.Shared.Rent(ChunkSize);
        _currentLength = 0;
        // Back-pressure: keep at most _maxInFlight chunks compressing; the oldest is written as soon as it is done.
        while (_inFlight.Count > _maxInFlight)
        {
            await WriteOldestAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask WriteOldestAsync(CancellationToken cancellationToken)
    {
        CompressedChunk chunk;
        try
        {
            chunk = await _inFlight.Dequeue().ConfigureAwait(false);
        }
        catch
        {
            _faulted = true;
            throw;
        }
        try
        {
            await _output.WriteAsync(chunk.Output.AsMemory(0, chunk.Length), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _faulted = true;
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk.Output);
        }
    }

    private static CompressedChunk Compress(byte[] input, int length, CompressionLevel level, int? zlibLevel)
    {
        try
        {
            var output = new PooledBufferStream(length / 2 + 4096);
            using (var member = zlibLevel is { } exact ? new GzipMemberWriter(output, exact) : new GzipMemberWriter(output, level))
            {
                member.Write(input.AsSpan(0, length));
                // Synchronous underneath: the member writes into memory.
                member.FinishAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            return new CompressedChunk(output.Buffer, output.Count);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(input);
        }
    }

    public override void Flush() { }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_finished)
        {
            // Abandoned (failure or cancellation): let running chunks end, return their buffers, write nothing.
            _finished = true;
            while (_inFlight.Count > 0)
            {
                var task = _inFlight.Dequeue();
                try
                {
                    var chunk = task.GetAwaiter().GetResult();
                    ArrayPool<byte>.Shared.Return(chunk.Output);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // The stream is being discarded; its error was (or will be) reported by the write that saw it.
                }
            }
            if (_current.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_current);
                _current = [];
            }
        }
        base.Dispose(disposing);
    }

    private readonly record struct CompressedChunk(byte[] Output, int Length);

    /// <summary>A growable write-only buffer from the array pool (MemoryStream would allocate a new array per chunk).</summary>
    private sealed class PooledBufferStream(int initialCapacity) : Stream
    {
        public byte[] Buffer { get; private set; } = ArrayPool<byte>.Shared.Rent(initialCapacity);

        public int Count { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Count;
        public override long Position { get => Count; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Count + buffer.Length > Buffer.Length)
            {
                var larger = ArrayPool<byte>.Shared.Rent(Math.Max(Buffer.Length * 2, Count + buffer.Length));
                Buffer.AsSpan(0, Count).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(Buffer);
                Buffer = larger;
            }
            buffer.CopyTo(Buffer.AsSpan(Count));
            Count += buffer.Length;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
