using System.Text.Json.Nodes;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>Requests counted by a proxy: cross-repository mounts, unchanged re-pushes, platform selection.</summary>
public sealed class RegistryBlobReuseTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [SkippableFact]
    public async Task BaseInOtherRepositoryOfSameRegistry_BaseLayersAreMountedNotUploaded()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await CountingProxy.StartAsync(registry.BaseUri);
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (baseImage, baseSource) = await RegistryPushPullTests.PushBaseAsync(context, session, proxy.Authority, "repo-a/base", 41);
        var image = context.Derive(baseImage, 42);
        proxy.Reset();

        var result = await new ImagePusher(session).PushAsync(image, baseSource, ImageReference.ForRepository(proxy.Authority, "repo-b/vddk"), ["1"], new PushOptions(), context.Log, None);

        var baseDigests = baseImage.Layers.Select(l => l.Digest.Value).ToHashSet();
        Assert.Equal(baseDigests.Count, result.Mounted);
        Assert.Equal(baseDigests.Count, proxy.Requests.Count(r => r.IsMount && r.Status == 201 && baseDigests.Contains(r.Digest!)));
        Assert.DoesNotContain(proxy.Requests, r => r.SentBlobData && baseDigests.Contains(r.Digest ?? string.Empty));
        Assert.DoesNotContain(proxy.Requests, r => r.Method == "GET" && r.Kind == RegistryRequestKind.Blob);
        Assert.Single(proxy.Requests, r => r.SentBlobData && r.Digest == image.VddkLayer.Descriptor.Digest.Value);
        Assert.Equal(2, result.Uploaded); // VDDK layer and config
    }

    [SkippableFact]
    public async Task UnchangedImagePushedAgain_UploadsNothing_AndKeepsTheDigest()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await CountingProxy.StartAsync(registry.BaseUri);
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (baseImage, baseSource) = await RegistryPushPullTests.PushBaseAsync(context, session, proxy.Authority, "again/base", 51);
        // Larger than the client's 8 MiB response buffer: a HEAD answer carries the blob's size as Content-Length.
        var image = context.Derive(baseImage, 52, size: 12 * 1024 * 1024);
        var target = ImageReference.ForRepository(proxy.Authority, "again/vddk");
        var first = await new ImagePusher(session).PushAsync(image, baseSource, target, ["1"], new PushOptions(), context.Log, None);
        proxy.Reset();

        using var secondSession = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var second = await new ImagePusher(secondSession).PushAsync(image, new RegistryImageSource(secondSession, baseSource.Reference), target, ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(first.Digest, second.Digest);
        Assert.Equal(0, second.Uploaded);
        Assert.Equal(0, second.Mounted);
        Assert.Equal(image.Layers.Count + 1, second.Skipped);
        Assert.DoesNotContain(proxy.Requests, r => r.Kind == RegistryRequestKind.Upload);
        Assert.DoesNotContain(proxy.Requests, r => r.Method == "GET" && r.Kind == RegistryRequestKind.Blob);
    }

    [SkippableFact]
    public async Task MultiPlatformIndexBase_ChoosesTheRequestedPlatform_AndMissingPlatformFailsWithVddk2003()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var repository = "multi/base";
        var entries = new List<Descriptor>();
        var pusher = new ImagePusher(session);
        var digests = new Dictionary<string, Digest>();
        foreach (var (platform, seed) in new[] { (Platform.LinuxAmd64, 61), (Platform.Parse("linux/arm64/v8"), 62) })
        {
            var (image, blobs) = context.MakeBase($"multi-{platform.Architecture}", seed, platform);
            await pusher.PushAsync(image, blobs, ImageReference.ForRepository(registry.Authority, repository), [], new PushOptions(), context.Log, None);
            entries.Add(image.ManifestDescriptor with { Platform = platform });
            digests[platform.Architecture] = image.Digest;
        }
        var index = OciJson.Serialize(new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = entries });
        await session.GetClient(registry.Authority).PutManifestAsync(repository, "latest", MediaTypes.OciIndex, index, None);
        var source = new RegistryImageSource(session, ImageReference.Parse($"{registry.Authority}/{repository}:latest"));

        var arm = await source.ResolveAsync(Platform.Parse("linux/arm64"), None);
        var amd = await source.ResolveAsync(Platform.LinuxAmd64, None);
        var error = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.Parse("linux/s390x"), None));

        Assert.Equal(digests["arm64"], arm.ManifestDescriptor.Digest);
        Assert.Equal(digests["amd64"], amd.ManifestDescriptor.Digest);
        Assert.Equal("arm64", JsonNode.Parse(arm.ConfigBytes)!["architecture"]!.GetValue<string>());
        Assert.Equal(ErrorCodes.PlatformNotFound, error.Code);
        Assert.Contains("linux/amd64", error.Message);
        Assert.Contains("linux/arm64/v8", error.Message);
    }
}
