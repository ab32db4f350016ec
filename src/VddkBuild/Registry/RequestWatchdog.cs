namespace VddkBuild.Registry;

/// <summary>
/// A timeout that restarts on every sign of progress: a streamed upload may take as long as it needs, but fails
/// (retryably) once no byte moved for <see cref="Timeout"/>, or the answer does not come that long after the last one.
/// </summary>
internal sealed class RequestWatchdog : IDisposable
{
    private readonly CancellationTokenSource _source;

    public RequestWatchdog(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Timeout = timeout;
        _source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _source.CancelAfter(timeout);
    }

    public TimeSpan Timeout { get; }

    public CancellationToken Token => _source.Token;

    public void Touch()
    {
        try
        {
            _source.CancelAfter(Timeout);
        }
        catch (ObjectDisposedException)
        {
            // The request already finished.
        }
    }

    public void Dispose() => _source.Dispose();
}
