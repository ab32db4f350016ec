using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.IO;

/// <summary>
/// A read-only pass-through that shows every chunk to <see cref="Observe"/> as it goes by (checksums, header walks)
/// and owns the stream it reads from.
/// </summary>
public abstract class ObservingReadStream(Stream inner) : ReadOnlyStream
{
    public sealed override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        Observe(buffer[..read]);
        return read;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public sealed override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Observe(buffer.Span[..read]);
        return read;
    }

    /// <summary>Sees the bytes just read, in order; may throw to fail the read.</summary>
    protected abstract void Observe(ReadOnlySpan<byte> data);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
