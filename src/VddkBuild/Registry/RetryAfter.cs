using System.Net.Http.Headers;

namespace VddkBuild.Registry;

/// <summary>Reads a <c>Retry-After</c> header: seconds, or an HTTP date.</summary>
public static class RetryAfter
{
    public static TimeSpan? From(HttpResponseMessage response, DateTimeOffset now) => From(response.Headers.RetryAfter, now);

    public static TimeSpan? From(RetryConditionHeaderValue? header, DateTimeOffset now)
    {
        if (header is null)
        {
            return null;
        }
        if (header.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }
        if (header.Date is { } date)
        {
            var wait = date - now;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }

    public static TimeSpan? Parse(string value, DateTimeOffset now) =>
        RetryConditionHeaderValue.TryParse(value, out var header) ? From(header, now) : null;
}
