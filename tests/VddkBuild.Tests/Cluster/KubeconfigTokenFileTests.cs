using VddkBuild.Cluster;

namespace VddkBuild.Tests.Cluster;

/// <summary>A kubeconfig tokenFile as client-go's NewBearerAuthWithRefreshRoundTripper uses it.</summary>
public sealed class KubeconfigTokenFileTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("vddk-tokenfile-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task The_file_is_re_read_after_a_minute_and_the_last_token_read_stands_while_it_cannot_be_read()
    {
        var path = Path.Combine(_root, "token");
        File.WriteAllText(path, "first\n");
        var now = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var file = new KubeconfigTokenFile(path, "inline", "u", () => now);

        Assert.Equal("first", file.Token);
        File.WriteAllText(path, "rotated\n");
        now += TimeSpan.FromSeconds(30);
        Assert.Equal("first", file.Token);
        now += TimeSpan.FromSeconds(31);
        Assert.Equal("rotated", file.Token);
        Assert.Equal("Bearer rotated", (await file.GetAuthenticationHeaderAsync(CancellationToken.None)).ToString());

        File.Delete(path);
        now += TimeSpan.FromMinutes(2);
        Assert.Equal("rotated", file.Token);
        File.WriteAllText(path, "  \n");
        now += TimeSpan.FromMinutes(2);
        Assert.Equal("rotated", file.Token);
    }

    [Fact]
    public void Without_an_inline_token_the_file_must_be_readable_and_not_empty_at_once()
    {
        var missing = Path.Combine(_root, "missing");
        var empty = Path.Combine(_root, "empty");
        File.WriteAllText(empty, "\n");

        Assert.Contains("cannot be read", Assert.Throws<k8s.Exceptions.KubeConfigException>(() => new KubeconfigTokenFile(missing, null, "u")).Message, StringComparison.Ordinal);
        Assert.Contains("is empty", Assert.Throws<k8s.Exceptions.KubeConfigException>(() => new KubeconfigTokenFile(empty, "", "u")).Message, StringComparison.Ordinal);
        Assert.Equal("inline", new KubeconfigTokenFile(missing, "inline", "u").Token);
    }
}
