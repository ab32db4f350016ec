using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Bounded, visible retries with exponential backoff and jitter for registry operations. An operation is retried
/// as a whole (a blob upload restarts from a fresh POST). Each retry is logged; when attempts run out the last
/// failure becomes VDDK3004 (VDDK3013 if the registry could never be reached).
/// </summary>
public sealed class RetryPolicy
{
    private readonly RetrySettings _settings;
    private readonly IBuildLog _log;
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;

    public RetryPolicy(RetrySettings settings, IBuildLog log, Func<TimeSpan, CancellationToken, Task>? delay = null)
    {
        _settings = settings;
        _log = log;
        _delay = delay ?? ((d, ct) => Task.Delay(d, ct));
    }

    public RetrySettings Settings => _settings;

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<T> ExecuteAsync<T>(string operation, Func<int, CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        var attempts = Math.Max(1, _settings.MaxAttempts);
        var neverConnected = true;
        for (var attempt = 1; ; attempt++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return await action(attempt, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (AsTransient(ex, cancellationToken) is { } transient)
            {
                neverConnected &= transient.ConnectFailed;
                if (attempt >= attempts)
                {
                    throw Exhausted(operation, attempts, transient, neverConnected);
                }
                var delay = DelayFor(attempt, transient.RetryAfter);
                _log.Info($"{operation}: {transient.Message}; retrying in {delay.TotalSeconds:0.0} s (attempt {attempt + 1} of {attempts}).");
                await _delay(delay, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public Task ExecuteAsync(string operation, Func<int, CancellationToken, Task> action, CancellationToken cancellationToken) =>
        ExecuteAsync<bool>(operation, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<bool> (attempt, ct) =>
        {
            await action(attempt, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <summary>Backoff for the retry after <paramref name="attempt"/>: exponential, capped, with jitter in [50%, 100%].</summary>
    public TimeSpan DelayFor(int attempt, TimeSpan? retryAfter)
    {
        if (retryAfter is { } serverWait)
        {
            return serverWait > _settings.MaxRetryAfter ? _settings.MaxRetryAfter : serverWait;
        }
        var exponential = _settings.BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30));
        var capped = Math.Min(exponential, _settings.MaxDelay.TotalMilliseconds);
        var jittered = capped * (0.5 + (Random.Shared.NextDouble() * 0.5));
        return TimeSpan.FromMilliseconds(jittered);
    }

    private static TransientRegistryException? AsTransient(Exception ex, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        return ex switch
        {
            TransientRegistryException transient => transient,
            // Reading a response or source body can break after the request itself succeeded.
            IOException io => new TransientRegistryException($"connection broken ({io.Message})", inner: io),
            TimeoutException timeout => new TransientRegistryException(timeout.Message, inner: timeout),
            _ => null,
        };
    }

    private static VddkException Exhausted(string operation, int attempts, TransientRegistryException last, bool neverConnected)
    {
        if (neverConnected)
        {
            return new VddkException(ErrorCodes.RegistryUnreachable,
                $"{operation} failed: the registry could not be reached after {attempts} attempts ({last.Message}). Check the registry host and port, that it is running, and any proxy settings.",
                operation, last);
        }
        return new VddkException(ErrorCodes.RegistryRetriesExhausted,
            $"{operation} failed after {attempts} attempts; last failure: {VddkException.Reason(last)}. The registry or the network is unstable; run again, or raise the retry limit.",
            operation, last);
    }
}
