using System.Diagnostics;
using System.Text.Json.Nodes;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes;
using VddkBuild.TestSupport.Kubernetes.Simulators;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>
/// The user's path, through MSBuild and the sample project: PrepareVddkRegistry (dry run, then for real as part of
/// PublishVddk with VddkPrepareRegistry=true) and PublishVddk against an empty simulated OpenShift, with only a
/// kubeconfig. Its own Ceph (the sample project's builds must run one at a time, in the MSBuild collection).
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class ClusterPublishVddkTests(CephRgw ceph, ITestOutputHelper output) : IClassFixture<CephRgw>, IAsyncLifetime
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-cluster-msbuild-").FullName;
    private SimulatedOpenShift? _cluster;

    public async Task InitializeAsync()
    {
        ceph.Require();
        _cluster = await SimulatedOpenShift.StartAsync(ceph);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            Assert.Empty(_cluster.Api.ControllerErrors);
            await _cluster.DisposeAsync();
        }
        Directory.Delete(_work, recursive: true);
    }

    private Dictionary<string, string> ClusterProperties(string bucket) => new()
    {
        ["VddkKubeconfig"] = _cluster!.KubeconfigPath,
        ["VddkBucketName"] = bucket,
        ["VddkClusterPollInterval"] = "200ms",
        ["VddkRegistryRolloutTimeout"] = "60s",
    };

    [SkippableFact]
    public async Task PrepareVddkRegistry_then_PublishVddk_from_an_empty_cluster_push_through_the_route_and_point_the_provider_at_the_digest()
    {
        Podman.Require();
        var api = _cluster!.Api;
        var bucket = CephRgw.UniqueBucketName("msbuild");
        var sample = new SampleProject(_work);

        // 1. Dry run: the plan is printed, nothing is written.
        var dryRun = await sample.RunAsync("PrepareVddkRegistry", new Dictionary<string, string>(ClusterProperties(bucket)) { ["VddkDryRun"] = "true" });
        Assert.True(dryRun.Succeeded, dryRun.ToString());
        Assert.Contains("Dry run, would change configs.imageregistry.operator.openshift.io \"cluster\": spec.storage.emptyDir: {} -> <none>", dryRun.Output);
        Assert.Contains("nothing was written", dryRun.Output);
        Assert.Empty(api.MutatingRequests);

        // 2. PublishVddk with VddkPrepareRegistry=true: prepare, push through the route, grant pulls, update the provider.
        var properties = new Dictionary<string, string>(ClusterProperties(bucket))
        {
            ["VddkPrepareRegistry"] = "true",
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
            ["VddkForkliftProvider"] = "vcenter",
            ["VddkImageTags"] = "8.0.1",
        };
        var stopwatch = Stopwatch.StartNew();
        var first = await sample.RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkClusterImageReference", "VddkImageReference", "VddkClusterRegistryRoute");
        output.WriteLine($"first PublishVddk (prepare + build + push): {stopwatch.Elapsed.TotalSeconds:0.0} s");

        var digest = first["VddkImageDigest"];
        var route = first["VddkClusterRegistryRoute"];
        Assert.Equal(_cluster.RegistryOperator.Front.Host, route);
        Assert.Equal($"image-registry.openshift-image-registry.svc:5000/openshift-mtv/vddk@{digest}", first["VddkClusterImageReference"]);
        Assert.Equal($"{route}/openshift-mtv/vddk@{digest}", first["VddkImageReference"]);
        var provider = api.Store.GetRequired(KubeResources.ForkliftProviders, "openshift-mtv", "vcenter");
        Assert.Equal(first["VddkClusterImageReference"], provider["spec"]!["settings"]!["vddkInitImage"]!.GetValue<string>());
        Assert.Equal("vcenter", provider["spec"]!["settings"]!["sdkEndpoint"]!.GetValue<string>());
        var pullers = api.Store.GetRequired(KubeResources.RoleBindings, "openshift-mtv", "allow-image-pullers");
        Assert.Equal("system:image-puller", pullers["roleRef"]!["name"]!.GetValue<string>());
        Assert.Contains(pullers["subjects"]!.AsArray(), s => s!["name"]!.GetValue<string>() == "system:authenticated");
        // The image's blobs are in the claim's RGW bucket (the registry runs on the S3 driver).
        var claimKeys = api.Store.GetRequired(KubeResources.Secrets, "openshift-image-registry", "openshift-image-registry");
        using (var s3 = ClusterBucket.Client(ceph, new VddkBuild.Cluster.BucketFacts(bucket, new Uri(ceph.Endpoint), "us-east-1", null, null,
            new VddkBuild.Cluster.BucketCredentials(Decode(claimKeys, "AWS_ACCESS_KEY_ID"), Decode(claimKeys, "AWS_SECRET_ACCESS_KEY")))))
        {
            var hex = digest["sha256:".Length..];
            var blobs = await ClusterBucket.ListAsync(s3, bucket, "docker/registry/v2/blobs/");
            Assert.Contains($"docker/registry/v2/blobs/sha256/{hex[..2]}/{hex}/data", blobs.Select(b => b.Key));
            Assert.True(blobs.Count >= 3, $"expected manifest, config and layers in the bucket, found {blobs.Count} blob(s)");
        }

        // 3. podman pulls through the route, verifying TLS with the ingress CA, as a service account that may only
        //    pull (the default account: rights from allow-image-pullers), and the Forklift check passes.
        using var sandbox = new ContainerToolsSandbox();
        var certDir = Directory.CreateDirectory(Path.Combine(_work, "certs")).FullName;
        await File.WriteAllTextAsync(Path.Combine(certDir, "ingress-ca.crt"), _cluster.Ingress.CaPem);
        var puller = api.Tokens.Issue("openshift-mtv", "default", TimeSpan.FromMinutes(10), ["https://kubernetes.default.svc"]);
        var access = new RegistryAccess(TlsVerify: true, CertDir: certDir, Credentials: new RegistryCredentials("serviceaccount", puller.Token));
        var podman = new Podman(sandbox);
        var image = $"{route}/openshift-mtv/vddk@{digest}";
        await podman.PullAsync(image, access);
        ForkliftCheck.AssertVddkTree(await ForkliftCheck.RunInitContainerAsync(podman, image));

        // 4. Second run: nothing to change on the cluster (tokens are requested, nothing is written), no registry restart.
        api.ClearRequestLog();
        var restarts = _cluster.RegistryOperator.RestartCount;
        stopwatch.Restart();
        var second = await sample.RunAsync("PublishVddk", properties);
        output.WriteLine($"second PublishVddk: {stopwatch.Elapsed.TotalSeconds:0.0} s");
        Assert.True(second.Succeeded, second.ToString());
        Assert.Contains("the image registry was already prepared; nothing changed", second.Output);
        Assert.Contains($"VddkImageDigest = {digest}", second.Output);
        var writes = api.MutatingRequests;
        Assert.All(writes, w => Assert.Equal("token", w.Subresource));
        Assert.Equal(restarts, _cluster.RegistryOperator.RestartCount);
        Assert.Equal(1, restarts);
        // No secret in the build output.
        foreach (var token in api.Tokens.Issued)
        {
            Assert.DoesNotContain(token.Token, first.Values);
            Assert.DoesNotContain(token.Token, second.Output);
        }
        Assert.DoesNotContain(Decode(claimKeys, "AWS_SECRET_ACCESS_KEY"), second.Output);
    }

    [SkippableFact]
    public async Task A_push_to_a_registry_that_is_not_the_clusters_gives_the_provider_the_pushed_reference_not_the_service_name()
    {
        await using var registry = await VddkBuild.TestSupport.Registry.DockerRegistryProcess.StartAsync();
        var sample = new SampleProject(_work);

        var result = await sample.RunForPropertiesAsync("PublishVddk", new Dictionary<string, string>
        {
            ["VddkKubeconfig"] = _cluster!.KubeconfigPath,
            ["VddkRegistry"] = registry.Authority,
            ["VddkRegistryInsecure"] = "true",
            ["VddkForkliftProvider"] = "vcenter",
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
        }, "VddkImageReference", "VddkImageDigest");

        Assert.Equal($"{registry.Authority}/openshift-mtv/vddk@{result["VddkImageDigest"]}", result["VddkImageReference"]);
        var provider = _cluster.Api.Store.GetRequired(KubeResources.ForkliftProviders, "openshift-mtv", "vcenter");
        Assert.Equal(result["VddkImageReference"], provider["spec"]!["settings"]!["vddkInitImage"]!.GetValue<string>());
    }

    [SkippableFact]
    public async Task With_VddkUseCluster_false_PublishVddk_ignores_the_cluster_and_writes_the_archive()
    {
        var sample = new SampleProject(_work);
        var result = await sample.RunAsync("PublishVddk", new Dictionary<string, string>
        {
            ["VddkKubeconfig"] = _cluster!.KubeconfigPath,
            ["VddkUseCluster"] = "false",
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
        });

        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains("nothing was pushed (no VddkRegistry set; VddkUseCluster=false), so the image was written to", result.Output);
        Assert.Empty(_cluster.Api.Requests);
    }

    [SkippableFact]
    public async Task PublishVddk_on_a_cluster_whose_registry_has_no_route_fails_with_a_coded_error_saying_what_to_run()
    {
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync("PublishVddk", new Dictionary<string, string>
        {
            ["VddkKubeconfig"] = _cluster!.KubeconfigPath,
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
        });

        Assert.False(result.Succeeded);
        Assert.Contains("error VDDK4015", result.Output);
        // The simulated cluster starts as bare metal does: the registry Removed, so switching on its route is not the fix.
        Assert.Contains("spec.managementState Removed", result.Output);
        Assert.Contains("PrepareVddkRegistry does both", result.Output);
        Assert.DoesNotContain("{\"spec\":{\"defaultRoute\":true}}", result.Output);
        Assert.Empty(_cluster.Api.MutatingRequests);
        Assert.DoesNotContain("nothing was pushed (no VddkRegistry set; ", result.Output);
    }

    [SkippableFact]
    public async Task A_single_step_target_does_only_its_step()
    {
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync("PrepareVddkCaBundle", ClusterProperties(CephRgw.UniqueBucketName("step")));

        Assert.True(result.Succeeded, result.ToString());
        var writes = _cluster!.Api.MutatingRequests;
        var write = Assert.Single(writes);
        Assert.Equal(("create", KubeResources.ConfigMaps, "openshift-config"), (write.Verb, write.Resource, write.Namespace));
        Assert.NotNull(_cluster.Api.Store.Get(KubeResources.ConfigMaps, "openshift-config", "image-registry-s3-bundle"));
        Assert.Null(_cluster.Api.Store.Get(KubeResources.ObjectBucketClaims, "openshift-image-registry", "openshift-image-registry"));
    }

    private static string Decode(JsonObject secret, string key) =>
        System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(secret["data"]![key]!.GetValue<string>()));
}
