using VddkBuild.Cluster;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes;
using VddkBuild.TestSupport.Kubernetes.Simulators;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>
/// Pushing through the simulated registry route: TLS verified against the ingress CA read from the cluster, a
/// TokenRequest token as credential, RBAC of the repository's namespace, blobs ending up in the RGW bucket.
/// </summary>
[Collection(CephRgw.CollectionName)]
public sealed class ClusterPushTests(CephRgw ceph, ITestOutputHelper output) : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-cluster-push-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private async Task<(ClusterPushResult Result, Digest Layer)> PushAsync(ClusterScenario scenario, ClusterSession session, string repository, int seed)
    {
        var access = await ClusterRegistryAccess.OpenAsync(session, repository, serviceAccount: null, CancellationToken.None);
        using var registry = ClusterImagePush.OpenRegistrySession(access, new RegistryTransportOptions { Retry = new RetrySettings { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(50) } }, scenario.Log);
        var layer = TestImages.CreateLayer(_work, $"layer-{seed}", 256 * 1024, seed);
        var image = TestImages.Build(TestImages.Scratch(Platform.LinuxAmd64), layer, Platform.LinuxAmd64);
        await using var source = new LocalBlobSource("scratch", []);
        var result = await ClusterImagePush.PushAsync(access, registry, image, source, repository, ["8.0.1"], new PushOptions { ForceChunkedUpload = true, ChunkSize = 64 * 1024 }, scenario.Log, CancellationToken.None);
        return (result, layer.Descriptor.Digest);
    }

    [SkippableFact]
    public async Task A_push_through_the_route_lands_in_the_bucket_and_a_token_that_expires_mid_push_is_renewed()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        var prepared = await scenario.PrepareAsync();
        var front = scenario.Cluster.RegistryOperator.Front;
        // Every token issued so far stops working a few requests into the push, as a 10-minute token would.
        front.ExpireIssuedTokensAfter(4);
        scenario.Cluster.Api.ClearRequestLog();

        var (result, layer) = await PushAsync(scenario, scenario.Session(), "openshift-mtv/vddk", seed: 7);

        Assert.Equal($"image-registry.openshift-image-registry.svc:5000/openshift-mtv/vddk@{result.Pushed.Digest}", result.ClusterImageReference);
        Assert.True(front.RejectedExpiredTokens > 0, "the expired token should have been refused at least once");
        var tokenRequests = scenario.Cluster.Api.Requests.Where(r => r.Subresource == "token" && r.Verb == "create").ToList();
        Assert.True(tokenRequests.Count >= 2, $"expected a renewed token, saw {tokenRequests.Count} TokenRequest(s)");
        Assert.All(tokenRequests, r => Assert.Equal("/api/v1/namespaces/openshift-mtv/serviceaccounts/builder/token", r.Path));
        Assert.Contains("renewed them", scenario.Log.AllText);
        Assert.DoesNotContain(scenario.Cluster.Api.Tokens.Issued.First().Token, scenario.Log.AllText);
        Assert.Equal(0, front.RealmPosts);
        using var s3 = ClusterBucket.Client(ceph, prepared.Bucket!);
        var blobs = await ClusterBucket.ListAsync(s3, scenario.BucketName, "docker/registry/v2/blobs/");
        // The VDDK layer is stored by the registry's S3 driver in the claim's bucket (path layout of distribution).
        var hex = layer.ToString()["sha256:".Length..];
        Assert.Contains($"docker/registry/v2/blobs/sha256/{hex[..2]}/{hex}/data", blobs.Select(b => b.Key));
    }

    [SkippableFact]
    public async Task A_service_account_without_push_rights_fails_naming_the_permission_it_lacks()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output, new SimulatedOpenShiftOptions { BuilderCanPush = false });
        await scenario.PrepareAsync();

        var error = await Assert.ThrowsAsync<VddkException>(() => PushAsync(scenario, scenario.Session(), "openshift-mtv/vddk", seed: 8));

        Assert.Equal(ErrorCodes.RegistryPushForbidden, error.Code);
        Assert.Contains("system:serviceaccount:openshift-mtv:builder", error.Message);
        Assert.Contains("'update' on imagestreams/layers", error.Message);
        Assert.Contains("system:image-builder", error.Message);
        Assert.Contains("oc policy add-role-to-user system:image-builder -z builder -n openshift-mtv", error.Message);
        Assert.Contains("HTTP 403", error.Message);
    }

    [SkippableFact]
    public async Task A_missing_service_account_fails_before_anything_is_pushed()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await scenario.PrepareAsync();
        scenario.Cluster.Api.Store.Delete(KubeResources.ServiceAccounts, "openshift-mtv", "builder");

        var error = await Assert.ThrowsAsync<VddkException>(() => ClusterRegistryAccess.OpenAsync(scenario.Session(), "openshift-mtv/vddk", null, CancellationToken.None));

        Assert.Equal(ErrorCodes.ServiceAccountTokenFailed, error.Code);
        Assert.Contains("VddkServiceAccount", error.Message);
        Assert.Equal(0, scenario.Cluster.RegistryOperator.Front.AuthorizedRequests);
    }
}
