using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using VddkBuild.Threading;

namespace VddkBuild.IO;

/// <summary>
/// Reads its inner stream ahead on a thread of its own, a few buffers deep, so that producing the bytes
/// (decompressing, and whatever observes the compressed side: hashing, copying) runs on one core while the reader
/// parses, hashes and checks them on another. The reader sees exactly the inner stream's bytes, then its end or the
/// exception that ended it. Owns the inner stream; disposing stops the thread first.
/// </summary>
public sealed class ReadAheadStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly int _bufferSize;
    private readonly Channel<Segment> _filled;
    private readonly CancellationTokenSource _stop = new();
    private Task? _producer;
    private ExceptionDispatchInfo? _failure;
    private Segment? _current;
    private int _offset;
    private bool _ended;
    private bool _disposed;

    private sealed record Segment(byte[] Buffer, int Count);

    public ReadAheadStream(Stream inner, int bufferSize = 256 * 1024, int depth = 4)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        (_inner, _bufferSize) = (inner, bufferSize);
        _filled = Channel.CreateBounded<Segment>(new BoundedChannelOptions(depth) { SingleReader = true, SingleWriter = true });
    }

    public override int Read(Span<byte> buffer)
    {
        while (true)
        {
            var taken = TakeBuffered(buffer);
            if (taken > 0 || _ended || buffer.IsEmpty)
            {
                return taken;
            }
            Start();
            if (!_filled.Reader.TryRead(out var next))
            {
                if (!_filled.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                {
                    End();
                }
                continue;
            }
            Accept(next);
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var taken = TakeBuffered(buffer.Span);
            if (taken > 0 || _ended || buffer.IsEmpty)
            {
                return taken;
            }
            Start();
            if (!_filled.Reader.TryRead(out var next))
            {
                if (!await _filled.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    End();
                }
                continue;
            }
            Accept(next);
        }
    }

    private int TakeBuffered(Span<byte> buffer)
    {
        if (_current is null)
        {
            return 0;
        }
        var count = Math.Min(buffer.Length, _current.Count - _offset);
        _current.Buffer.AsSpan(_offset, count).CopyTo(buffer);
        _offset += count;
        if (_offset == _current.Count)
        {
            ArrayPool<byte>.Shared.Return(_current.Buffer);
            _current = null;
        }
        return count;
    }

    private void Accept(Segment next) => (_current, _offset) = (next, 0);

    /// <summary>The producer finished: its failure, if any, is the reader's now.</summary>
    private void End()
    {
        _ended = true;
        _failure?.Throw();
    }

    private void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _producer ??= Task.Factory.StartNew(Produce, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Produce()
    {
        var writer = _filled.Writer;
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(_bufferSize);
                var count = 0;
                try
                {
                    int read;
                    while (count < _bufferSize && (read = _inner.Read(buffer, count, _bufferSize - count)) > 0)
                    {
                        count += read;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !_stop.IsCancellationRequested)
                {
                    // The bytes before the failure are the reader's first, so that it fails where the stream did.
                    _failure = ExceptionDispatchInfo.Capture(ex);
                }
                if (count == 0 || !HandOver(writer, new Segment(buffer, count)))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return;
                }
                if (count < _bufferSize || _failure is not null)
                {
                    return; // the inner stream ended (or failed) inside this buffer
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // disposed while reading ahead
        }
        finally
        {
            writer.TryComplete();
        }
    }

    /// <summary>Queues a filled buffer, waiting while the reader is <c>depth</c> buffers behind; false once disposed.</summary>
    private bool HandOver(ChannelWriter<Segment> writer, Segment segment)
    {
        while (!writer.TryWrite(segment))
        {
            if (!writer.WaitToWriteAsync(_stop.Token).AsTask().GetAwaiter().GetResult())
            {
                return false;
            }
        }
        return true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            StopProducer();
            _inner.Dispose();
            _stop.Dispose();
        }
        base.Dispose(disposing);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            StopProducer();
            await _inner.DisposeAsync().ConfigureAwait(false);
            _stop.Dispose();
        }
        await base.DisposeAsync().ConfigureAwait(false);
    }

    private void StopProducer()
    {
        _stop.Cancel();
        try
        {
            _producer?.GetAwaiter().GetResult(); // it ends at its next read or hand-over; the inner stream is still open until then
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // its failure belongs to a reading that is being abandoned
        }
        while (_filled.Reader.TryRead(out var left))
        {
            ArrayPool<byte>.Shared.Return(left.Buffer);
        }
        if (_current is not null)
        {
            ArrayPool<byte>.Shared.Return(_current.Buffer);
            _current = null;
        }
    }
}
