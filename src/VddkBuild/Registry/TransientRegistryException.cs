using System.Net;

namespace VddkBuild.Registry;

/// <summary>
/// A failure worth retrying: a retryable status (408, 429, 5xx), a broken or refused connection, a stalled request.
/// Only <see cref="RetryPolicy"/> sees it; once retries are spent it becomes a <see cref="VddkException"/>.
/// </summary>
public sealed class TransientRegistryException : Exception
{
    public TransientRegistryException(string reason, HttpStatusCode? status = null, TimeSpan? retryAfter = null, bool connectFailed = false, Exception? inner = null)
        : base(reason, inner)
    {
        Status = status;
        RetryAfter = retryAfter;
        ConnectFailed = connectFailed;
    }

    public HttpStatusCode? Status { get; }

    /// <summary>The server's Retry-After, if it sent one.</summary>
    public TimeSpan? RetryAfter { get; }

    /// <summary>True when no connection could be made at all (refused, no route, DNS).</summary>
    public bool ConnectFailed { get; }

    public static bool IsRetryableStatus(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError
            or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
}
