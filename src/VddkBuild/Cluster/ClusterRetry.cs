using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Re-runs a read-compare-write step when the API server reports a conflict: someone changed the object between our
/// read and our write (409 Conflict), or created it first (409 AlreadyExists). Each attempt re-reads, so the retry
/// works on the latest version and may find nothing left to do.
/// </summary>
internal static class ClusterRetry
{
    public const int Attempts = 5;

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<T> OnConflictAsync<T>(ClusterSession session, ClusterObjectRef target, Func<CancellationToken, Task<T>> attempt, CancellationToken cancellationToken)
    {
        for (var round = 1; ; round++)
        {
            try
            {
                return await attempt(cancellationToken).ConfigureAwait(false);
            }
            catch (VddkException ex) when (ex.Code == ErrorCodes.ClusterConflict && round < Attempts)
            {
                session.Log.Detail($"{target} changed while being updated ({ex.InnerException?.Message}); reading it again (attempt {round + 1} of {Attempts}).");
                await Task.Delay(TimeSpan.FromMilliseconds(50 * (1 << round)), session.Clock, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
