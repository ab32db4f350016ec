using System.Diagnostics;
using VddkBuild.IntegrationTests.Registry;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Faults;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// Hangs, at engine level with a 1 s request timeout (the product's is 100 s, too long for a test through MSBuild):
/// a request that gets no answer, and a download that stops moving mid-body, are abandoned and retried.
/// </summary>
public sealed class StalledRegistryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    [SkippableFact]
    public async Task A_manifest_PUT_that_gets_no_answer_is_abandoned_after_the_timeout_and_retried()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var proxy = context.Own(await FaultProxy.StartAsync(registry.BaseUri));
        proxy.Add("hang", RequestMatch.ManifestPut, RegistryFault.Delay(TimeSpan.FromSeconds(30)));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority) with { RequestTimeout = Timeout });
        var (image, blobs) = context.MakeBase("hang", 81);
        var clock = Stopwatch.StartNew();

        var result = await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(proxy.Authority, "stall/hang"), ["1"], new PushOptions(), context.Log, CancellationToken.None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        Assert.Contains(context.Log.Lines, l => l.Message.Contains("no answer within 1 s", StringComparison.Ordinal) && l.Message.Contains("retrying", StringComparison.Ordinal));
        var stored = StoredImageCheck.Inspect(registry.StorageDirectory, "stall/hang", "1");
        Assert.True(stored.IsConsistent && stored.ManifestDigest == image.Digest.Value, stored.ToString());
    }

    [SkippableFact]
    public async Task A_base_blob_download_that_stalls_mid_body_is_retried_and_the_streamed_copy_completes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var proxy = context.Own(await FaultProxy.StartAsync(registry.BaseUri));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, registry.Authority) with { RequestTimeout = Timeout });
        var (baseImage, blobs) = context.MakeBase("stall-base", 82);
        await new ImagePusher(session).PushAsync(baseImage, blobs, ImageReference.ForRepository(registry.Authority, "stall/base"), ["1"], new PushOptions(), context.Log, CancellationToken.None);
        // The first layer download sends a little, then nothing for 3 s (> the 1 s timeout), then the rest.
        proxy.Add("stall", RequestMatch.BlobGet, RegistryFault.DripResponse(16 * 1024, TimeSpan.FromSeconds(3)));
        var source = new RegistryImageSource(session, ImageReference.Parse($"{proxy.Authority}/stall/base:1"));
        var resolved = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        var derived = context.Derive(resolved, 83);

        // Another registry name than the base's: base layers are streamed from the proxy, not mounted.
        var result = await new ImagePusher(session).PushAsync(derived, source, ImageReference.ForRepository(registry.Authority, "stall/derived"), ["1"], new PushOptions(), context.Log, CancellationToken.None);

        Assert.Equal(derived.Digest, result.Digest);
        Assert.Single(proxy.Injected);
        Assert.Contains(context.Log.Lines, l => l.Message.Contains("retrying", StringComparison.Ordinal));
        var stored = StoredImageCheck.Inspect(registry.StorageDirectory, "stall/derived", "1");
        Assert.True(stored.IsConsistent && stored.ManifestDigest == derived.Digest.Value, stored.ToString());
    }
}
