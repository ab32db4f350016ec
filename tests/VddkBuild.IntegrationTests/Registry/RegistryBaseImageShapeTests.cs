using System.Text;
using System.Text.Json.Nodes;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// Base images of the shapes registries hold, read from a real docker-registry: the platform is the config's (a
/// single manifest states none, an index entry may state none or the wrong one), indexes may nest, and a manifest
/// may come without any media type. A registry base is accepted or refused exactly as the same image in an OCI layout.
/// </summary>
public sealed class RegistryBaseImageShapeTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly Platform Arm64 = Platform.Parse("linux/arm64");

    private static async Task<BuiltImage> PushAsync(RegistryTestContext context, RegistrySession session, string authority, string repository, string tag, int seed, Platform? platform = null, Action<JsonObject>? editConfig = null)
    {
        var (image, blobs) = context.MakeBase(repository.Replace('/', '-') + "-" + tag, seed, platform);
        if (editConfig is not null)
        {
            image = WithConfig(image, editConfig);
        }
        await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(authority, repository), [tag], new PushOptions(), context.Log, None);
        return image;
    }

    /// <summary>The same image with its config edited (and the manifest naming the new config).</summary>
    private static BuiltImage WithConfig(BuiltImage image, Action<JsonObject> edit)
    {
        var config = JsonNode.Parse(image.ConfigBytes)!.AsObject();
        edit(config);
        var configBytes = Encoding.UTF8.GetBytes(config.ToJsonString());
        var configDescriptor = image.ConfigDescriptor with { Digest = Digest.Compute(configBytes), Size = configBytes.Length };
        var manifest = OciJson.Deserialize<ImageManifest>(image.ManifestBytes, "test manifest") with { Config = configDescriptor };
        var manifestBytes = OciJson.Serialize(manifest);
        return image with
        {
            ConfigBytes = configBytes,
            ConfigDescriptor = configDescriptor,
            ManifestBytes = manifestBytes,
            ManifestDescriptor = image.ManifestDescriptor with { Digest = Digest.Compute(manifestBytes), Size = manifestBytes.Length },
        };
    }

    private static async Task<Digest> PutIndexAsync(RegistrySession session, string authority, string repository, string tag, params Descriptor[] entries)
    {
        var bytes = OciJson.Serialize(new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = entries });
        return await session.GetClient(authority).PutManifestAsync(repository, tag, MediaTypes.OciIndex, bytes, None);
    }

    private static Descriptor Entry(BuiltImage image, Platform? platform) => image.ManifestDescriptor with { Platform = platform };

    private static Task<SourceImage> ResolveAsync(RegistrySession session, string reference) =>
        new RegistryImageSource(session, ImageReference.Parse(reference)).ResolveAsync(Platform.LinuxAmd64, None);

    [SkippableFact]
    public async Task A_single_manifest_whose_config_is_arm64_is_VDDK2003_naming_what_it_is()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        await PushAsync(context, session, registry.Authority, "shape/single", "arm", 1, Arm64);

        var error = await Assert.ThrowsAsync<VddkException>(() => ResolveAsync(session, $"{registry.Authority}/shape/single:arm"));

        Assert.Equal(ErrorCodes.PlatformNotFound, error.Code);
        Assert.Contains("linux/arm64", error.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task An_index_entry_is_checked_against_its_config_whether_it_states_no_platform_or_a_wrong_one()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var arm = await PushAsync(context, session, registry.Authority, "shape/index", "arm", 2, Arm64);
        await PutIndexAsync(session, registry.Authority, "shape/index", "no-platform", Entry(arm, null));
        await PutIndexAsync(session, registry.Authority, "shape/index", "lying", Entry(arm, Platform.LinuxAmd64));

        foreach (var tag in new[] { "no-platform", "lying" })
        {
            var error = await Assert.ThrowsAsync<VddkException>(() => ResolveAsync(session, $"{registry.Authority}/shape/index:{tag}"));
            Assert.Equal(ErrorCodes.PlatformNotFound, error.Code);
            Assert.Contains("linux/arm64", error.Message, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    public async Task A_config_that_states_no_os_is_VDDK2004()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        await PushAsync(context, session, registry.Authority, "shape/no-os", "1", 3, editConfig: c => c.Remove("os"));

        var error = await Assert.ThrowsAsync<VddkException>(() => ResolveAsync(session, $"{registry.Authority}/shape/no-os:1"));

        Assert.Equal(ErrorCodes.ImageLayoutInvalid, error.Code);
        Assert.Contains("\"os\"", error.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_config_media_type_of_an_artifact_is_VDDK2005()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var (image, blobs) = context.MakeBase("artifact", 4);
        var manifest = OciJson.Deserialize<ImageManifest>(image.ManifestBytes, "test manifest");
        var manifestBytes = OciJson.Serialize(manifest with { Config = manifest.Config with { MediaType = "application/vnd.cncf.helm.config.v1+json" } });
        image = image with { ManifestBytes = manifestBytes, ManifestDescriptor = image.ManifestDescriptor with { Digest = Digest.Compute(manifestBytes), Size = manifestBytes.Length } };
        await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(registry.Authority, "shape/artifact"), ["1"], new PushOptions(), context.Log, None);

        var error = await Assert.ThrowsAsync<VddkException>(() => ResolveAsync(session, $"{registry.Authority}/shape/artifact:1"));

        Assert.Equal(ErrorCodes.MediaTypeUnsupported, error.Code);
        Assert.Contains("helm", error.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task A_nested_index_is_followed_to_the_requested_platform()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var arm = await PushAsync(context, session, registry.Authority, "shape/nested", "arm", 5, Arm64);
        var amd = await PushAsync(context, session, registry.Authority, "shape/nested", "amd", 6);
        var innerBytes = OciJson.Serialize(new ImageIndex { MediaType = MediaTypes.OciIndex, Manifests = [Entry(arm, Arm64), Entry(amd, Platform.LinuxAmd64)] });
        var inner = await PutIndexAsync(session, registry.Authority, "shape/nested", "inner", Entry(arm, Arm64), Entry(amd, Platform.LinuxAmd64));
        await PutIndexAsync(session, registry.Authority, "shape/nested", "outer",
            new Descriptor { MediaType = MediaTypes.OciIndex, Digest = inner, Size = innerBytes.Length });

        var resolved = await ResolveAsync(session, $"{registry.Authority}/shape/nested:outer");

        Assert.Equal(amd.Digest, resolved.ManifestDescriptor.Digest);
        Assert.Equal(amd.ConfigBytes, resolved.ConfigBytes);
    }

    [SkippableFact]
    public async Task A_manifest_without_media_type_served_as_octet_stream_is_read_by_its_shape()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await CountingProxy.StartAsync(registry.BaseUri);
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, proxy.Authority));
        var image = await PushAsync(context, session, registry.Authority, "shape/bare", "1", 7);
        // The same manifest without "mediaType" (image-spec before 1.0.2 did not ask for it), as a static file server
        // or a proxy that knows no manifest types would serve it.
        var bare = JsonNode.Parse(image.ManifestBytes)!.AsObject();
        bare.Remove("mediaType");
        var bareBytes = Encoding.UTF8.GetBytes(bare.ToJsonString());
        proxy.Fault = async http =>
        {
            if (http.Request.Method != "GET" || !http.Request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal))
            {
                return false;
            }
            http.Response.StatusCode = 200;
            http.Response.ContentType = "application/octet-stream";
            await http.Response.Body.WriteAsync(bareBytes);
            return true;
        };

        var resolved = await ResolveAsync(session, $"{proxy.Authority}/shape/bare:1");

        Assert.Equal(MediaTypes.OciManifest, resolved.ManifestDescriptor.MediaType);
        Assert.Equal(Digest.Compute(bareBytes), resolved.ManifestDescriptor.Digest);
        Assert.Equal(image.ConfigBytes, resolved.ConfigBytes);
    }
}
