using System.Net;
using System.Runtime.CompilerServices;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// As client-go: a request the API server answers 429 (API Priority and Fairness shedding load) or 5xx together with a
/// <c>Retry-After</c> header is sent again after the wait it asks for, up to <see cref="MaxRetries"/> times. Such an
/// answer says the request was not carried out, so writes are sent again too. KubernetesClient retries nothing itself:
/// without this, one busy moment of the cluster (an upgrade, a burst of operators) fails the build.
/// </summary>
internal sealed class RetryAfterHandler(TimeProvider clock) : DelegatingHandler
{
    /// <summary>client-go's default; with the first try, 11 attempts.</summary>
    public const int MaxRetries = 10;

    public const int MaxAttempts = MaxRetries + 1;

    /// <summary>A longer Retry-After is cut to this, so a confused server cannot park the build.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        for (var retry = 0; ; retry++)
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (retry >= MaxRetries || WaitFor(response) is not { } wait)
            {
                return response;
            }
            response.Dispose();
            await Task.Delay(wait, clock, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The wait a throttling answer asks for; null for any other answer (a 5xx without Retry-After is an error, as in client-go).</summary>
    private TimeSpan? WaitFor(HttpResponseMessage response)
    {
        var status = (int)response.StatusCode;
        if (response.StatusCode != HttpStatusCode.TooManyRequests && status is < 500 or > 599)
        {
            return null;
        }
        return RetryAfter.From(response, clock.GetUtcNow()) is { } wait ? (wait > MaxWait ? MaxWait : wait) : null;
    }
}
