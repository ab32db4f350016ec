using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class BearerTokenCacheTests
{
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public void Key_DependsOnScopeSetNotOrder()
    {
        Assert.Equal(BearerTokenCache.Key("r", "realm", "s", ["b", "a"]), BearerTokenCache.Key("r", "realm", "s", ["a", "b", "a"]));
        Assert.NotEqual(BearerTokenCache.Key("r", "realm", "s", ["a"]), BearerTokenCache.Key("r", "realm", "s", ["a", "b"]));
    }

    [Fact]
    public void TryGet_ExpiresTokensBeforeTheirStatedLifetimeEnds()
    {
        var clock = new ManualClock();
        var cache = new BearerTokenCache(clock);
        cache.Store("k", "T", TimeSpan.FromSeconds(60));

        Assert.True(cache.TryGet("k", out var token));
        Assert.Equal("T", token);
        clock.Now += TimeSpan.FromSeconds(51);
        Assert.False(cache.TryGet("k", out _));
    }

    [Fact]
    public void Invalidate_DropsOnlyTheRejectedToken()
    {
        var cache = new BearerTokenCache();
        cache.Store("k", "new", TimeSpan.FromMinutes(5));

        cache.Invalidate("k", "old");
        Assert.True(cache.TryGet("k", out _));
        cache.Invalidate("k", "new");
        Assert.False(cache.TryGet("k", out _));
    }
}
