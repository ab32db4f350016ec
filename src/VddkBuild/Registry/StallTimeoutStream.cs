using System.Runtime.CompilerServices;
using VddkBuild.IO;
using VddkBuild.Threading;
namespace VddkBuild.Registry;

/// <summary>
/// Fails a read that makes no progress for the given time with <see cref="TimeoutException"/> (retryable), so a
/// dripping or hung download is detected without capping how long a large, healthy transfer may take.
/// </summary>
internal sealed class StallTimeoutStream(Stream inner, TimeSpan timeout, string what) : ReadOnlyStream
{
    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer) => inner.Read(buffer);

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(timeout);
        try
        {
            return await inner.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{what}: no data for {timeout.TotalSeconds:0} s");
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
