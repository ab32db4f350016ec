using System.Text.Json;
using Microsoft.AspNetCore.Http;
using VddkBuild.IntegrationTests.Reliability;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.Oci;
using VddkBuild.TestSupport.Faults;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// PublishVddk (a real dotnet build of the sample) against Debian's docker-registry behind a proxy that refuses OCI
/// manifest PUTs the way registries without OCI support answer: the image goes as Docker schema 2, which skopeo,
/// podman (the Forklift check) and the registry's storage confirm; forced formats are kept; other refusals are not
/// taken for a format refusal.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class ManifestFormatTests(ITestOutputHelper output)
{
    private const string Tag = "8.0.1";

    /// <summary>Answers as registries without OCI support do (distribution before OCI, Quay with OCI off, a bare 415).</summary>
    private static readonly Dictionary<string, (int Status, string Body)> Refusals = new()
    {
        ["distribution"] = (400, """{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported manifest media type and no default available: application/vnd.oci.image.manifest.v1+json"}]}"""),
        ["quay"] = (415, """{"errors":[{"code":"MANIFEST_INVALID","detail":{"message":"manifest schema version not supported"},"message":"manifest invalid"}]}"""),
        ["bare-415"] = (415, ""),
        ["ecr-immutable"] = (400, """{"errors":[{"code":"TAG_INVALID","message":"The image tag '8.0.1' already exists in the 'vddk' repository and cannot be overwritten because the repository is immutable."}]}"""),
        ["blob-unknown"] = (400, """{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:0000"}]}"""),
    };

    private static bool ManifestPutOf(HttpRequest request, string mediaType) =>
        RequestMatch.ManifestPut(request) && (request.ContentType ?? string.Empty).StartsWith(mediaType, StringComparison.Ordinal);

    private static RegistryFault Refuse(string shape) => RegistryFault.Custom($"manifest refused ({shape})", async (context, _) =>
    {
        await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
        var (status, body) = Refusals[shape];
        context.Response.StatusCode = status;
        if (body.Length > 0)
        {
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(body, context.RequestAborted);
        }
    });

    private static async Task<JsonElement> RawManifestAsync(PushWorld world, string reference)
    {
        using var raw = await new Skopeo(world.Sandbox).InspectRawAsync(reference, world.Access);
        return raw.RootElement.Clone();
    }

    private static void AssertDockerSchema2(JsonElement manifest)
    {
        Assert.Equal(MediaTypes.DockerManifest, manifest.GetProperty("mediaType").GetString());
        Assert.Equal(MediaTypes.DockerConfig, manifest.GetProperty("config").GetProperty("mediaType").GetString());
        Assert.All(manifest.GetProperty("layers").EnumerateArray(), l => Assert.Equal(MediaTypes.DockerLayerGzip, l.GetProperty("mediaType").GetString()));
        Assert.False(manifest.TryGetProperty("annotations", out _));
    }

    [SkippableTheory]
    [InlineData("distribution")]
    [InlineData("quay")]
    [InlineData("bare-415")]
    public async Task A_registry_that_refuses_OCI_manifests_gets_the_image_as_Docker_schema_2_and_a_rerun_uploads_nothing(string shape)
    {
        await using var world = await PushWorld.StartAsync(output);
        var refusing = world.Proxy.Add("refuse OCI", r => ManifestPutOf(r, MediaTypes.OciManifest), Refuse(shape), times: int.MaxValue);

        var first = await world.PublishAsync(Tag);

        Assert.True(first.Succeeded, first.ToString());
        Assert.Equal(1, refusing.Hits);
        Assert.Contains("Sending the same image as a Docker schema 2 manifest instead", first.Output);
        Assert.Contains($"VddkImageReference = {world.Proxy.Authority}/{PushWorld.Repository}@{first.Digest}", first.Output);
        Assert.Contains($"VddkClusterImageReference = image-registry.openshift-image-registry.svc:5000/{PushWorld.Repository}@{first.Digest}", first.Output);
        var stored = await world.AssertTagIsAbsentOrCompleteAsync(Tag); // storage, HEADs, skopeo copy
        Assert.Equal(first.Digest, stored.ManifestDigest);
        var reference = $"docker://{world.Registry.Authority}/{PushWorld.Repository}:{Tag}";
        AssertDockerSchema2(await RawManifestAsync(world, reference));

        if (shape == "distribution")
        {
            // What Forklift does with it: podman pulls the Docker-format image and runs it as the init container.
            Podman.Require();
            var podman = new Podman(world.Sandbox);
            var image = $"{world.Registry.Authority}/{PushWorld.Repository}@{first.Digest}";
            await podman.PullAsync(image, world.Access);
            ForkliftCheck.AssertVddkTree(await ForkliftCheck.RunInitContainerAsync(podman, image));
        }

        // Re-run, nothing changed: no blob sent, the same digest, and no refused PUT (the tag already names the Docker form).
        world.Proxy.ResetRecords();
        var second = await world.PublishAsync(Tag);

        Assert.True(second.Succeeded, second.ToString());
        Assert.Equal(first.Digest, second.Digest);
        Assert.DoesNotContain(world.Proxy.Requests, r => r.SentBlobData);
        Assert.Equal(1, refusing.Hits);
        Assert.Contains("already names this image as a Docker schema 2 manifest", second.Output);
        Assert.Equal(second.Digest, (await world.AssertTagIsAbsentOrCompleteAsync(Tag)).ManifestDigest);
    }

    [SkippableFact]
    public async Task VddkImageFormat_Docker_pushes_Docker_schema_2_to_a_registry_that_takes_OCI_too()
    {
        await using var world = await PushWorld.StartAsync(output);

        var run = await world.PublishAsync(Tag, "-p:VddkImageFormat=docker");

        Assert.True(run.Succeeded, run.ToString());
        Assert.DoesNotContain(world.Proxy.Requests, r => r.Kind == RegistryRequestKind.Manifest && r.Method == "PUT" && r.Status >= 400);
        var stored = await world.AssertTagIsAbsentOrCompleteAsync(Tag);
        Assert.Equal(run.Digest, stored.ManifestDigest);
        AssertDockerSchema2(await RawManifestAsync(world, $"docker://{world.Registry.Authority}/{PushWorld.Repository}:{Tag}"));

        // Automatic afterwards: the tag already names this image's Docker form, so it stays (same digest, nothing sent);
        // a new tag gets the OCI form, which this registry takes.
        world.Proxy.ResetRecords();
        var automatic = await world.PublishAsync(Tag);
        Assert.True(automatic.Succeeded, automatic.ToString());
        Assert.Equal(run.Digest, automatic.Digest);
        Assert.DoesNotContain(world.Proxy.Requests, r => r.SentBlobData);
        var fresh = await world.PublishAsync("fresh");
        Assert.True(fresh.Succeeded, fresh.ToString());
        Assert.NotEqual(run.Digest, fresh.Digest);
        Assert.Equal(MediaTypes.OciManifest, (await RawManifestAsync(world, $"docker://{world.Registry.Authority}/{PushWorld.Repository}:fresh")).GetProperty("mediaType").GetString());
    }

    [SkippableFact]
    public async Task Forced_OCI_against_a_registry_that_refuses_it_is_VDDK3014_saying_to_set_VddkImageFormat_Docker()
    {
        await using var world = await PushWorld.StartAsync(output);
        var refusing = world.Proxy.Add("refuse OCI", r => ManifestPutOf(r, MediaTypes.OciManifest), Refuse("quay"), times: int.MaxValue);

        var run = await world.PublishAsync(Tag, "-p:VddkImageFormat=OCI");

        Assert.False(run.Succeeded, run.ToString());
        Assert.Equal(["VDDK3014"], run.ErrorCodes);
        Assert.Contains("set VddkImageFormat=Docker", run.Output);
        Assert.Contains("manifest schema version not supported", run.Output);
        Assert.Equal(1, refusing.Hits);
        Assert.DoesNotContain(world.Proxy.Requests, r => r.Kind == RegistryRequestKind.Manifest && r.Method == "PUT" && r.Status < 400);
        Assert.False((await world.AssertTagIsAbsentOrCompleteAsync(Tag)).Exists);
    }

    [SkippableFact]
    public async Task A_registry_that_refuses_both_formats_is_VDDK3014_naming_both_attempts()
    {
        await using var world = await PushWorld.StartAsync(output);
        var refusing = world.Proxy.Add("refuse all", RequestMatch.ManifestPut, Refuse("distribution"), times: int.MaxValue);

        var run = await world.PublishAsync(Tag);

        Assert.False(run.Succeeded, run.ToString());
        Assert.Equal(["VDDK3014"], run.ErrorCodes);
        Assert.Contains("refused the image in both manifest formats", run.Output);
        Assert.Contains($"type {MediaTypes.OciManifest}", run.Output);
        Assert.Contains($"type {MediaTypes.DockerManifest}", run.Output);
        Assert.Equal(2, refusing.Hits);
        Assert.False((await world.AssertTagIsAbsentOrCompleteAsync(Tag)).Exists);
    }

    [SkippableFact]
    public async Task An_immutable_tag_refused_in_both_formats_says_to_push_another_tag()
    {
        await using var world = await PushWorld.StartAsync(output);
        var refusing = world.Proxy.Add("immutable tag", RequestMatch.ManifestPut, Refuse("ecr-immutable"), times: int.MaxValue);

        var run = await world.PublishAsync(Tag);

        Assert.False(run.Succeeded, run.ToString());
        Assert.Equal(["VDDK3014"], run.ErrorCodes);
        Assert.Contains("cannot be overwritten because the repository is immutable", run.Output);
        Assert.Contains("tags are immutable", run.Output);
        Assert.Contains("push another tag (VddkImageTags)", run.Output);
        Assert.Equal(2, refusing.Hits);
        Assert.False((await world.AssertTagIsAbsentOrCompleteAsync(Tag)).Exists);
    }

    [SkippableFact]
    public async Task A_manifest_refused_for_a_missing_blob_is_not_sent_again_as_Docker()
    {
        await using var world = await PushWorld.StartAsync(output);
        var refusing = world.Proxy.Add("blob unknown", RequestMatch.ManifestPut, Refuse("blob-unknown"), times: int.MaxValue);

        var run = await world.PublishAsync(Tag);

        Assert.False(run.Succeeded, run.ToString());
        Assert.Equal(["VDDK3009"], run.ErrorCodes);
        Assert.Contains("MANIFEST_BLOB_UNKNOWN", run.Output);
        Assert.DoesNotContain("Docker schema 2", run.Output);
        Assert.Equal(1, refusing.Hits);
    }

    [SkippableFact]
    public async Task VddkImageFormat_Docker_writes_a_schema_2_manifest_into_the_OCI_archive_under_a_reference_skopeo_reads()
    {
        await using var world = await PushWorld.StartAsync(output);
        var archive = Path.Combine(world.Work, "image.oci.tar");
        var properties = new Dictionary<string, string>
        {
            ["VddkArchive"] = world.Archive,
            ["VddkBaseImage"] = $"{world.Proxy.Authority}/{PushWorld.BaseRepository}:latest",
            ["VddkInsecureRegistries"] = world.Proxy.Authority,
            ["VddkImageArchive"] = archive,
            ["VddkImageTags"] = Tag,
        };

        var automatic = await world.Sample.RunAsync("BuildVddkImage", properties);
        Assert.True(automatic.Succeeded, automatic.ToString());
        Assert.Equal(MediaTypes.OciManifest, (await RawManifestAsync(world, $"oci-archive:{archive}:{Tag}")).GetProperty("mediaType").GetString());

        // PublishVddk without a registry writes the archive and prints how to push it: the reference it prints is one
        // skopeo reads (skopeo 1.9 finds tags among OCI entries only, so a Docker image is named by the file alone).
        var docker = await world.Sample.RunAsync("PublishVddk", properties, "-p:VddkImageFormat=Docker", "-p:VddkUseCluster=false");
        Assert.True(docker.Succeeded, docker.ToString());
        Assert.Contains($"skopeo copy oci-archive:{archive} docker://", docker.Output);
        AssertDockerSchema2(await RawManifestAsync(world, $"oci-archive:{archive}"));
        var copy = Path.Combine(world.Work, "copied");
        await new Skopeo(world.Sandbox).CopyAsync($"oci-archive:{archive}", "oci:" + copy); // verifies every digest
    }
}
