using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>PublishVddk through the sample project against Debian's docker-registry, with a counting proxy in front.</summary>
[Collection(MSBuildCollection.Name)]
public sealed class PublishVddkRegistryTests : IAsyncLifetime
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-publish-").FullName;
    private DockerRegistryProcess? _registry;
    private CountingProxy? _proxy;
    private ContainerToolsSandbox? _sandbox;

    public async Task InitializeAsync()
    {
        Requires.Tool("docker-registry");
        Skopeo.Require();
        _registry = await DockerRegistryProcess.StartAsync();
        _proxy = await CountingProxy.StartAsync(_registry.BaseUri);
        _sandbox = new ContainerToolsSandbox();
        _sandbox.AddInsecureRegistry(_registry.Authority);
        _sandbox.AddInsecureRegistry(_proxy.Authority);
    }

    public async Task DisposeAsync()
    {
        _sandbox?.Dispose();
        if (_proxy is not null) { await _proxy.DisposeAsync(); }
        if (_registry is not null) { await _registry.DisposeAsync(); }
        Directory.Delete(_work, recursive: true);
    }

    private async Task<Dictionary<string, string>> PushInputsAsync()
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);
        var layout = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base"));
        await new Skopeo(_sandbox!).CopyAsync(layout.Reference, $"docker://{_registry!.Authority}/base/ubi-minimal:latest", destinationAccess: RegistryAccess.Insecure, all: true);
        return new Dictionary<string, string>
        {
            ["VddkArchive"] = archive,
            ["VddkBaseImage"] = $"{_proxy!.Authority}/base/ubi-minimal:latest",
            ["VddkRegistry"] = _proxy.Authority,
            ["VddkRegistryInsecure"] = "true",
            ["VddkImageTags"] = "8.0.1%3Blatest",
        };
    }

    [SkippableFact]
    public async Task PublishVddk_mounts_the_base_pushes_the_layer_and_an_unchanged_rerun_uploads_no_blob()
    {
        Podman.Require();
        var properties = await PushInputsAsync();
        var sample = new SampleProject(_work);
        _proxy!.Reset();

        var first = await sample.RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkImageReference", "VddkClusterImageReference", "VddkVersion");
        var firstRequests = _proxy.Requests;
        _proxy.Reset();
        var second = await sample.RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkImageReference");
        var secondRequests = _proxy.Requests;

        var digest = first["VddkImageDigest"];
        Assert.StartsWith("sha256:", digest);
        Assert.Equal($"{_proxy.Authority}/openshift-mtv/vddk@{digest}", first["VddkImageReference"]);
        Assert.Equal($"image-registry.openshift-image-registry.svc:5000/openshift-mtv/vddk@{digest}", first["VddkClusterImageReference"]);
        // The base layer came from the same registry: mounted, never uploaded. Only the VDDK layer and the config were sent.
        Assert.Contains(firstRequests, r => r.IsMount && r.Status == 201);
        Assert.Equal(2, firstRequests.Count(r => r.SentBlobData));
        // Nothing changed: no blob sent, no upload session opened, the same digest.
        Assert.Equal(digest, second["VddkImageDigest"]);
        Assert.DoesNotContain(secondRequests, r => r.Kind == RegistryRequestKind.Upload);

        using var inspect = await new Skopeo(_sandbox!).InspectAsync($"docker://{_registry!.Authority}/openshift-mtv/vddk:latest", RegistryAccess.Insecure);
        Assert.Equal(digest, inspect.RootElement.GetProperty("Digest").GetString());
        var podman = new Podman(_sandbox!);
        await podman.PullAsync($"{_registry.Authority}/openshift-mtv/vddk@{digest}", RegistryAccess.Insecure);
        var opt = await ForkliftCheck.RunInitContainerAsync(podman, $"{_registry.Authority}/openshift-mtv/vddk@{digest}");
        ForkliftCheck.AssertVddkTree(opt);
    }

    [SkippableTheory]
    [InlineData("true")]
    [InlineData("false")]
    public async Task A_base_in_another_registry_is_copied_while_the_archive_is_read_and_VddkEarlyBaseCopy_false_gives_the_same_image_without(string nativeWorker)
    {
        var properties = await PushInputsAsync();
        await using var other = await DockerRegistryProcess.StartAsync();
        _sandbox!.AddInsecureRegistry(other.Authority);
        var layout = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "other-base"));
        await new Skopeo(_sandbox).CopyAsync(layout.Reference, $"docker://{other.Authority}/ubi8/ubi-minimal:latest", destinationAccess: RegistryAccess.Insecure, all: true);
        properties["VddkBaseImage"] = $"{other.Authority}/ubi8/ubi-minimal:latest";
        properties["VddkInsecureRegistries"] = other.Authority;
        properties["VddkNativeWorker"] = nativeWorker;

        var early = await new SampleProject(Path.Combine(_work, "early")).RunAsync("PublishVddk", new Dictionary<string, string>(properties) { ["VddkRepository"] = "mtv/early" }, "-v:d");
        var late = await new SampleProject(Path.Combine(_work, "late")).RunAsync("PublishVddk", new Dictionary<string, string>(properties) { ["VddkRepository"] = "mtv/late", ["VddkEarlyBaseCopy"] = "false" }, "-v:d");
        var wrong = await new SampleProject(Path.Combine(_work, "wrong")).RunAsync("PublishVddk", new Dictionary<string, string>(properties) { ["VddkRepository"] = "mtv/wrong", ["VddkEarlyBaseCopy"] = "sometimes" });

        Assert.True(early.Succeeded, early.ToString());
        Assert.True(late.Succeeded, late.ToString());
        Assert.Contains("base layer 1/1", early.Output);
        Assert.Contains("copied while the archive was read", early.Output);
        Assert.DoesNotContain("copied while the archive was read", late.Output);
        // The switch reaches the task both in the native worker and in MSBuild's own process.
        Assert.Equal(nativeWorker == "true", early.Output.Contains("PublishVddkImage runs in the native worker", StringComparison.Ordinal));
        static string Digest(string output) => System.Text.RegularExpressions.Regex.Match(output, @"VddkImageDigest = (sha256:[0-9a-f]{64})").Groups[1].Value;
        Assert.StartsWith("sha256:", Digest(early.Output));
        Assert.Equal(Digest(late.Output), Digest(early.Output));
        Assert.False(wrong.Succeeded);
        Assert.Contains("VDDK5002", wrong.Output);
        Assert.Contains("VddkEarlyBaseCopy", wrong.Output);
    }

    [SkippableFact]
    public async Task VddkAddSoname8Link_pushes_a_vddk9_image_whose_copied_tree_has_libvixDiskLib_so_8_and_a_rerun_uploads_nothing()
    {
        Podman.Require();
        var properties = await PushInputsAsync();
        properties["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in9"), SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 2_000_000, DocumentationPages = 20 });
        properties["VddkImageTags"] = "9.0.0.0";
        properties["VddkAddSoname8Link"] = "true";
        var sample = new SampleProject(_work);

        // The archive's own gzip would be sent early while it is checked; it lacks the link, so that upload is
        // abandoned and the written layer is pushed instead.
        var first = await sample.RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkVersion");
        _proxy!.Reset();
        var second = await sample.RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkVersion");
        var secondRequests = _proxy.Requests;
        // Another project: no layer cache, the layer is written again and must be the same.
        var fresh = await new SampleProject(Path.Combine(_work, "fresh")).RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkVersion");

        var digest = first["VddkImageDigest"];
        Assert.Equal("9.0.0.0", first["VddkVersion"]);
        Assert.Equal(digest, second["VddkImageDigest"]);
        Assert.Equal(digest, fresh["VddkImageDigest"]);
        Assert.DoesNotContain(secondRequests, r => r.Kind == RegistryRequestKind.Upload);
        var image = $"{_registry!.Authority}/openshift-mtv/vddk@{digest}";
        using var inspect = await new Skopeo(_sandbox!).InspectAsync($"docker://{image}", RegistryAccess.Insecure);
        Assert.Equal(digest, inspect.RootElement.GetProperty("Digest").GetString());
        var podman = new Podman(_sandbox!);
        await podman.PullAsync(image, RegistryAccess.Insecure);
        var opt = await ForkliftCheck.RunInitContainerAsync(podman, image);
        ForkliftCheck.AssertVddkTree(opt);
        // What older MTV's nbdkit dlopens, in the tree the init container copied to /opt as an arbitrary UID.
        var so8 = new FileInfo(Path.Combine(opt, ForkliftCheck.TreeName, "lib64", "libvixDiskLib.so.8"));
        Assert.Equal("libvixDiskLib.so.9.0.0.0", so8.LinkTarget);
        var library = so8.ResolveLinkTarget(returnFinalTarget: true);
        Assert.NotNull(library);
        Assert.Equal(Path.Combine(opt, ForkliftCheck.TreeName, "lib64", "libvixDiskLib.so.9.0.0.0"), library.FullName);
        Assert.True(File.Exists(library.FullName));
    }

    [SkippableFact]
    public async Task An_insecure_registry_warns_naming_the_host_on_every_run_and_a_plain_HTTP_registry_without_the_option_is_refused()
    {
        var properties = await PushInputsAsync();
        var sample = new SampleProject(_work);

        var insecure = await sample.RunAsync("PublishVddk", properties);
        var again = await sample.RunAsync("PublishVddk", properties);
        properties.Remove("VddkRegistryInsecure");
        var refused = await sample.RunAsync("PublishVddk", properties);

        Assert.True(insecure.Succeeded, insecure.ToString());
        Assert.Contains($"warning VDDK3901: Registry {_proxy!.Authority}", insecure.Output);
        Assert.Contains($"warning VDDK3901: Registry {_proxy.Authority}", again.Output);
        Assert.False(refused.Succeeded);
        Assert.Contains("error VDDK3003", refused.Output);
    }

    [SkippableFact]
    public async Task A_push_to_a_registry_that_is_not_the_clusters_gives_VddkImageReference_as_Forklifts_image()
    {
        var properties = await PushInputsAsync();
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync("PublishVddk", properties);

        Assert.True(result.Succeeded, result.ToString());
        var digest = System.Text.RegularExpressions.Regex.Match(result.Output, @"VddkImageDigest = (sha256:[0-9a-f]{64})").Groups[1].Value;
        Assert.Contains($"VddkImageReference = {_proxy!.Authority}/openshift-mtv/vddk@{digest}", result.Output);
        // The image-registry.openshift-image-registry.svc:5000 name is no image of this registry: it is offered only conditionally.
        Assert.Contains($"Forklift vddkInitImage: VddkImageReference; VddkClusterImageReference = image-registry.openshift-image-registry.svc:5000/openshift-mtv/vddk@{digest} only if {_proxy.Authority} is a route of the OpenShift cluster's own registry", result.Output);
        Assert.DoesNotContain("(Forklift vddkInitImage)", result.Output);
    }

    [SkippableFact]
    public async Task A_dry_run_with_a_registry_builds_and_pushes_nothing()
    {
        var properties = await PushInputsAsync();
        properties["VddkDryRun"] = "true";
        var sample = new SampleProject(_work);
        _proxy!.Reset();

        var result = await sample.RunAsync("PublishVddk", properties);

        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains("dry run, the image is not built or pushed", result.Output);
        Assert.Empty(_proxy.Requests);
        Assert.False(Directory.Exists(sample.IntermediateDirectory), "a dry run must not build the layer");
    }

    [Theory]
    [InlineData("quay.io")]
    [InlineData("docker.io")]
    [InlineData("ghcr.io")]
    public async Task Pushing_to_a_public_registry_is_refused_citing_the_VMware_licence(string registry)
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync("PublishVddk", new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkRegistry"] = registry });

        Assert.False(result.Succeeded);
        Assert.Contains("error VDDK3006", result.Output);
        Assert.Contains("VddkAllowPublicRegistry", result.Output);
        Assert.False(Directory.Exists(sample.IntermediateDirectory), "nothing should have been built before the licence check");
    }
}
