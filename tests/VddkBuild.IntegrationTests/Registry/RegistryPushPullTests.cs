using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>Push and pull against a real docker-registry over plain HTTP and TLS.</summary>
public sealed class RegistryPushPullTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    internal static async Task<(SourceImage Base, RegistryImageSource Source)> PushBaseAsync(RegistryTestContext context, RegistrySession session, string authority, string repository, int seed)
    {
        var (image, blobs) = context.MakeBase(repository.Replace('/', '-'), seed);
        await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(authority, repository), ["1.0"], new PushOptions(), context.Log, None);
        var source = new RegistryImageSource(session, ImageReference.Parse($"{authority}/{repository}:1.0"));
        return (await source.ResolveAsync(Platform.LinuxAmd64, None), source);
    }

    [SkippableFact]
    public async Task PlainHttpPush_ThenPullBack_GivesTheSameManifestAndLayerBytes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var (baseImage, baseSource) = await PushBaseAsync(context, session, registry.Authority, "base/busy", 1);
        Assert.Equal(2, baseImage.Layers.Count);
        var image = context.Derive(baseImage, 7);
        var target = RegistryTestContext.Reference(registry.Authority, "openshift-mtv/vddk");

        var result = await new ImagePusher(session).PushAsync(image, baseSource, target, ["8.0.1", "latest"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.Equal($"{registry.Authority}/openshift-mtv/vddk@{image.Digest}", result.PinnedReference.ToString());
        foreach (var tag in new[] { "8.0.1", "latest" })
        {
            var pulled = await new RegistryImageSource(session, target.WithTag(tag)).ResolveAsync(Platform.LinuxAmd64, None);
            Assert.Equal(image.Digest, pulled.ManifestDescriptor.Digest);
            Assert.Equal(image.ManifestBytes, pulled.ManifestBytes);
            Assert.Equal(image.ConfigBytes, pulled.ConfigBytes);
        }
        var pinned = new RegistryImageSource(session, result.PinnedReference);
        await using (var layer = await pinned.OpenBlobAsync(image.VddkLayer.Descriptor, None))
        {
            using var copy = new MemoryStream();
            await layer.CopyToAsync(copy);
            Assert.Equal(await File.ReadAllBytesAsync(image.VddkLayer.FilePath), copy.ToArray());
        }
        Assert.Single(context.Log.Warnings(ErrorCodes.InsecureRegistry));
        Assert.Contains(registry.Authority, context.Log.Warnings(ErrorCodes.InsecureRegistry)[0]);
    }

    [SkippableFact]
    public async Task PlainHttpRegistry_NotMarkedInsecure_FailsWithTlsError()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session();
        var source = new RegistryImageSource(session, ImageReference.Parse($"{registry.Authority}/some/image:1"));

        var error = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, None));

        Assert.Equal(ErrorCodes.RegistryTlsFailed, error.Code);
        Assert.Contains("VddkRegistryInsecure", error.Message);
    }

    [SkippableFact]
    public async Task TlsRegistry_WithTestCaBundle_PushesAndPulls_AndWithoutBundle_FailsWithVddk3003()
    {
        await using var context = new RegistryTestContext(output);
        using var ca = TestCertificateAuthority.Create(Path.Combine(context.Directory, "ca"));
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Tls = ca }));
        using var trusted = context.Session(new RegistryTransportOptions { CaBundlePath = ca.CaCertificatePath });

        var (baseImage, baseSource) = await PushBaseAsync(context, trusted, registry.Authority, "base/tls", 2);
        var image = context.Derive(baseImage, 8);
        var result = await new ImagePusher(trusted).PushAsync(image, baseSource, RegistryTestContext.Reference(registry.Authority, "vddk/tls"), ["1"], new PushOptions(), context.Log, None);
        Assert.Equal(image.Digest, result.Digest);
        Assert.Empty(context.Log.Warnings(ErrorCodes.InsecureRegistry));

        using var untrusted = context.Session();
        var error = await Assert.ThrowsAsync<VddkException>(() =>
            new RegistryImageSource(untrusted, ImageReference.Parse($"{registry.Authority}/vddk/tls:1")).ResolveAsync(Platform.LinuxAmd64, None));
        Assert.Equal(ErrorCodes.RegistryTlsFailed, error.Code);
        Assert.Contains("VddkRegistryCaBundle", error.Message);
    }

    [SkippableFact]
    public async Task TlsRegistry_MarkedInsecure_IsReachedOverHttpsWithoutVerification()
    {
        await using var context = new RegistryTestContext(output);
        using var ca = TestCertificateAuthority.Create(Path.Combine(context.Directory, "ca"));
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Tls = ca }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var (baseImage, _) = await PushBaseAsync(context, session, registry.Authority, "base/insecure-tls", 3);

        Assert.Equal(2, baseImage.Layers.Count);
        Assert.Equal("https", (await session.GetClient(registry.Authority).GetBaseUriAsync(None)).Scheme);
        Assert.Single(context.Log.Warnings(ErrorCodes.InsecureRegistry));
    }

    [SkippableFact]
    public async Task ChunkedUpload_WithSmallChunks_ProducesTheSameImage()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await CountingProxy.StartAsync(registry.BaseUri);
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (image, blobs) = context.MakeBase("chunked", 11);

        var result = await new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(proxy.Authority, "chunked/image"), ["c"],
            new PushOptions { ForceChunkedUpload = true, ChunkSize = 10_000 }, context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        var patches = proxy.Requests.Count(r => r.Method == "PATCH");
        var expected = image.Layers.Sum(l => (int)Math.Ceiling(l.Size / 10_000.0)) + (int)Math.Ceiling(image.ConfigBytes.Length / 10_000.0);
        Assert.Equal(expected, patches);
        var pulled = await new RegistryImageSource(session, ImageReference.Parse($"{proxy.Authority}/chunked/image:c")).ResolveAsync(Platform.LinuxAmd64, None);
        Assert.Equal(image.Digest, pulled.ManifestDescriptor.Digest);
    }

    [SkippableFact]
    public async Task MissingBaseImage_FailsWithBaseImageNotFound()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            new RegistryImageSource(session, ImageReference.Parse($"{registry.Authority}/nothing/here:1")).ResolveAsync(Platform.LinuxAmd64, None));

        Assert.Equal(ErrorCodes.BaseImageNotFound, error.Code);
    }

    [SkippableFact]
    public async Task Skopeo_ReadsThePushedImage()
    {
        Skopeo.Require();
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var (baseImage, baseSource) = await PushBaseAsync(context, session, registry.Authority, "base/skopeo", 4);
        var image = context.Derive(baseImage, 9);
        await new ImagePusher(session).PushAsync(image, baseSource, RegistryTestContext.Reference(registry.Authority, "vddk/skopeo"), ["2"], new PushOptions(), context.Log, None);

        using var sandbox = new ContainerToolsSandbox();
        var skopeo = new Skopeo(sandbox);
        using var json = await skopeo.InspectAsync($"docker://{registry.Authority}/vddk/skopeo:2", RegistryAccess.Insecure);

        Assert.Equal(image.Digest.Value, json.RootElement.GetProperty("Digest").GetString());
        Assert.Equal(3, json.RootElement.GetProperty("Layers").GetArrayLength());
        var layout = Path.Combine(context.Directory, "copy");
        await skopeo.CopyAsync($"docker://{registry.Authority}/vddk/skopeo:2", $"oci:{layout}:x", sourceAccess: RegistryAccess.Insecure);
        Assert.True(File.Exists(Path.Combine(layout, "index.json")));
    }
}
