using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;
using VddkBuild.Threading;

namespace VddkBuild.IO;

/// <summary>
/// A file being written that others can read while it grows: the writer is a write-only <see cref="Stream"/> that
/// makes its bytes visible a buffer at a time, and every follower reads exactly the bytes written so far, waiting for
/// more until it has the length it asked for. Lets an upload send a layer file while it is still being written,
/// without holding the file in memory. Followers read through their own handles, so the writer may close, and the
/// file may be renamed, while they read.
/// </summary>
public sealed class GrowingFile : Stream
{
    // Below the large-object threshold: a fresh build process would otherwise pay a full collection for it.
    private const int BufferSize = 64 * 1024;

    private readonly string _path;
    private readonly SafeFileHandle _handle;
    private readonly byte[] _buffer = new byte[BufferSize];
    private int _buffered;
    private long _written;
    private readonly Progress _progress = new();

    private GrowingFile(string path, SafeFileHandle handle) => (_path, _handle) = (path, handle);

    /// <summary>Creates <paramref name="path"/> (it must not exist) for writing.</summary>
    public static GrowingFile CreateNew(string path) =>
        new(path, File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read | FileShare.Delete));

    public string FilePath => _path;

    /// <summary>Bytes written so far, including those not yet visible to followers.</summary>
    public long Written => _written + _buffered;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => Volatile.Read(ref _progress.State) == 0;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _progress.State) != 0, this);
        while (!data.IsEmpty)
        {
            var take = Math.Min(data.Length, BufferSize - _buffered);
            data[..take].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += take;
            data = data[take..];
            if (_buffered == BufferSize)
            {
                WriteBuffer();
            }
        }
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

    /// <summary>Makes everything written so far visible to followers.</summary>
    public override void Flush()
    {
        if (Volatile.Read(ref _progress.State) == 0 && _buffered > 0)
        {
            WriteBuffer();
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        Flush();
        return Task.CompletedTask;
    }

    /// <summary>The file is whole: followers get its end.</summary>
    public void Complete()
    {
        Flush();
        End(1);
    }

    /// <summary>The file will not be finished (it is not wanted, or writing failed): followers fail.</summary>
    public void Abandon() => End(2);

    /// <summary>
    /// A stream of the file's first <paramref name="length"/> bytes, waiting for the writer where it has not got that
    /// far yet. It fails if the writer is abandoned or completes the file shorter than that.
    /// </summary>
    public Stream OpenFollower(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new Follower(this, File.OpenHandle(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete), length);
    }

    private void WriteBuffer()
    {
        RandomAccess.Write(_handle, _buffer.AsSpan(0, _buffered), _written);
        _written += _buffered;
        _buffered = 0;
        Volatile.Write(ref _progress.Visible, _written);
        Signal();
    }

    private void End(int state)
    {
        if (Interlocked.CompareExchange(ref _progress.State, state, 0) == 0)
        {
            Signal();
        }
    }

    private void Signal() => Interlocked.Exchange(ref _progress.Changed, Progress.NewSignal()).TrySetResult();

    /// <summary>What followers watch (a separate object: fields of a Stream cannot be passed by reference).</summary>
    private sealed class Progress
    {
        public long Visible;
        public int State; // 0 writing, 1 complete, 2 abandoned
        public TaskCompletionSource Changed = NewSignal();

        public static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            End(2); // closed without Complete: what followers have not read yet will not come
            _handle.Dispose();
        }
        base.Dispose(disposing);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    private sealed class Follower(GrowingFile file, SafeFileHandle handle, long length) : ReadOnlyStream
    {
        private long _position;

        public override int Read(Span<byte> buffer)
        {
            while (true)
            {
                var available = Available(buffer.Length, out var changed);
                if (changed is null)
                {
                    return Advance(available == 0 ? 0 : RandomAccess.Read(handle, buffer[..available], _position));
                }
                changed.Wait();
            }
        }

        [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                var available = Available(buffer.Length, out var changed);
                if (changed is null)
                {
                    return Advance(available == 0 ? 0 : await RandomAccess.ReadAsync(handle, buffer[..available], _position, cancellationToken).ConfigureAwait(false));
                }
                await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        /// <summary>How much can be read now (0: the end); or, with nothing yet, the signal of the next change.</summary>
        private int Available(int wanted, out Task? changed)
        {
            changed = null;
            if (wanted == 0 || _position >= length)
            {
                return 0;
            }
            // Take the signal before looking, so that a write landing in between still wakes the wait.
            // The state before the length: a completed file's length is final by the time its state says so.
            var progress = file._progress;
            var signal = Volatile.Read(ref progress.Changed).Task;
            var state = Volatile.Read(ref progress.State);
            var visible = Volatile.Read(ref progress.Visible);
            var available = Math.Min(visible, length) - _position;
            if (available > 0)
            {
                return (int)Math.Min(wanted, available);
            }
            switch (state)
            {
                case 1:
                    throw new IOException($"'{file._path}' ended at {visible} bytes, short of the {length} expected.");
                case 2:
                    throw new IOException($"'{file._path}' was abandoned while being read.");
            }
            changed = signal;
            return 0;
        }

        private int Advance(int read)
        {
            if (read == 0 && _position < length)
            {
                throw new IOException($"'{file._path}' is shorter than the bytes written to it.");
            }
            _position += read;
            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                handle.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
