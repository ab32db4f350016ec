using System.Net;
using System.Net.Http.Headers;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class RetryPolicyTests
{
    private readonly List<TimeSpan> _delays = [];
    private readonly RecordingBuildLog _log = new();

    private RetryPolicy Policy(int attempts = 4) =>
        new(new RetrySettings { MaxAttempts = attempts, BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(1), MaxRetryAfter = TimeSpan.FromSeconds(30) },
            _log, (d, _) => { _delays.Add(d); return Task.CompletedTask; });

    [Fact]
    public async Task TransientFailures_AreRetriedAndEachRetryIsLogged()
    {
        var calls = 0;

        var result = await Policy().ExecuteAsync("Uploading x", (_, _) =>
        {
            calls++;
            return calls < 3 ? throw new TransientRegistryException("HTTP 503", HttpStatusCode.ServiceUnavailable) : Task.FromResult(42);
        }, CancellationToken.None);

        Assert.Equal(42, result);
        Assert.Equal(3, calls);
        Assert.Equal(2, _delays.Count);
        Assert.Equal(2, _log.Lines.Count(l => l.Message.Contains("retrying", StringComparison.Ordinal) && l.Message.Contains("Uploading x", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ExhaustedRetries_FailWithVddk3004NamingOperationAndLastStatus()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() => Policy(3).ExecuteAsync<int>("Writing manifest r/a:1",
            (_, _) => throw new TransientRegistryException("HTTP 502", HttpStatusCode.BadGateway), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryRetriesExhausted, error.Code);
        Assert.Contains("Writing manifest r/a:1", error.Message);
        Assert.Contains("502", error.Message);
        Assert.Contains("3 attempts", error.Message);
    }

    [Fact]
    public async Task NeverConnected_FailsWithUnreachable()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() => Policy(2).ExecuteAsync<int>("Reading manifest",
            (_, _) => throw new TransientRegistryException("cannot connect", connectFailed: true), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryUnreachable, error.Code);
    }

    [Fact]
    public async Task NonTransientErrors_AreNotRetried()
    {
        var calls = 0;

        await Assert.ThrowsAsync<VddkException>(() => Policy().ExecuteAsync<int>("op", (_, _) =>
        {
            calls++;
            throw new VddkException(ErrorCodes.RegistryDenied, "denied");
        }, CancellationToken.None));

        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task IOExceptionsAndTimeouts_AreRetried()
    {
        var calls = 0;

        await Policy().ExecuteAsync("op", (_, _) => ++calls switch
        {
            1 => throw new IOException("Connection reset by peer"),
            2 => throw new TimeoutException("stalled"),
            _ => Task.FromResult(true),
        }, CancellationToken.None);

        Assert.Equal(3, calls);
    }

    [Fact]
    public async Task RetryAfter_IsHonouredAndCapped()
    {
        var calls = 0;

        await Policy().ExecuteAsync("op", (_, _) => ++calls switch
        {
            1 => throw new TransientRegistryException("429", HttpStatusCode.TooManyRequests, TimeSpan.FromSeconds(7)),
            2 => throw new TransientRegistryException("429", HttpStatusCode.TooManyRequests, TimeSpan.FromHours(1)),
            _ => Task.FromResult(true),
        }, CancellationToken.None);

        Assert.Equal([TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(30)], _delays);
    }

    [Fact]
    public void Backoff_GrowsExponentially_WithJitter_UpToTheCap()
    {
        var policy = Policy();
        for (var i = 0; i < 50; i++)
        {
            var first = policy.DelayFor(1, null);
            var third = policy.DelayFor(3, null);
            var tenth = policy.DelayFor(10, null);
            Assert.InRange(first.TotalMilliseconds, 50, 100);
            Assert.InRange(third.TotalMilliseconds, 200, 400);
            Assert.InRange(tenth.TotalMilliseconds, 500, 1000);
        }
    }

    [Fact]
    public async Task Cancellation_IsNotRetried()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Policy().ExecuteAsync("op", (_, ct) =>
        {
            ct.ThrowIfCancellationRequested();
            return Task.FromResult(1);
        }, cancelled.Token));
        Assert.Empty(_delays);
    }

    [Theory]
    [InlineData(HttpStatusCode.RequestTimeout, true)]
    [InlineData(HttpStatusCode.TooManyRequests, true)]
    [InlineData(HttpStatusCode.InternalServerError, true)]
    [InlineData(HttpStatusCode.BadGateway, true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, true)]
    [InlineData(HttpStatusCode.GatewayTimeout, true)]
    [InlineData(HttpStatusCode.NotImplemented, false)]
    [InlineData(HttpStatusCode.BadRequest, false)]
    [InlineData(HttpStatusCode.Forbidden, false)]
    public void RetryableStatuses(HttpStatusCode status, bool retryable)
    {
        Assert.Equal(retryable, TransientRegistryException.IsRetryableStatus(status));
    }
}

public sealed class RetryAfterTests
{
    private static readonly DateTimeOffset Now = new(2025, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("5", 5)]
    [InlineData("0", 0)]
    [InlineData("Sat, 01 Mar 2025 12:00:30 GMT", 30)]
    [InlineData("Sat, 01 Mar 2025 11:00:00 GMT", 0)]
    public void Parse_ReadsSecondsOrHttpDate(string value, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), RetryAfter.Parse(value, Now));
    }

    [Fact]
    public void Parse_Garbage_IsIgnored()
    {
        Assert.Null(RetryAfter.Parse("soon", Now));
    }

    [Fact]
    public void From_ReadsTheResponseHeader()
    {
        using var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
        response.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(12));

        Assert.Equal(TimeSpan.FromSeconds(12), RetryAfter.From(response, Now));
    }
}
