using System.Text.Json.Nodes;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

public sealed class RegistryPreparationTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private static readonly RegistryPreparationSteps WritingSteps =
        RegistryPreparationSteps.BucketClaim | RegistryPreparationSteps.Credentials | RegistryPreparationSteps.RegistryConfig;

    /// <summary>An AWS installation: the registry on the installer's bucket, with ODF installed next to it (a Bound claim, its keys, the s3 route).</summary>
    private void SeedAwsRegistryAndABoundClaim(string managementState = "Managed")
    {
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", JsonNode.Parse("""
            {"spec":{"managementState":"STATE","replicas":2,"storage":{"managementState":"Managed",
              "s3":{"bucket":"mycluster-x7k2p-image-registry-us-east-1-abcdef","region":"us-east-1","encrypt":true,"virtualHostedStyle":false}}}}
            """.Replace("STATE", managementState, StringComparison.Ordinal))!.AsObject());
        _cluster.Seed(KubeResources.ObjectBucketClaims, "openshift-image-registry", "openshift-image-registry", JsonNode.Parse("""
            {"spec":{"storageClassName":"openshift-storage.noobaa.io","bucketName":"image-registry-bucket"},"status":{"phase":"Bound"}}
            """)!.AsObject());
        _cluster.SeedSecret("openshift-image-registry", "openshift-image-registry", ("AWS_ACCESS_KEY_ID", "NOOBAAKEY"), ("AWS_SECRET_ACCESS_KEY", "noobaa-secret"));
        _cluster.Seed(KubeResources.ConfigMaps, "openshift-image-registry", "openshift-image-registry", new JsonObject { ["data"] = new JsonObject { ["BUCKET_NAME"] = "image-registry-bucket" } });
        _cluster.Seed(KubeResources.Routes, "openshift-storage", "s3", new JsonObject { ["spec"] = new JsonObject { ["host"] = "s3-openshift-storage.apps.example.test" } });
    }

    [Theory]
    [InlineData(RegistryPreparationSteps.BucketClaim | RegistryPreparationSteps.Credentials | RegistryPreparationSteps.RegistryConfig)]
    [InlineData(RegistryPreparationSteps.Credentials)]
    public async Task A_registry_on_another_s3_bucket_is_refused_before_its_keys_are_replaced(RegistryPreparationSteps steps)
    {
        SeedAwsRegistryAndABoundClaim();

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryPreparation.RunAsync(_cluster.Session(), new RegistryPreparationOptions { Steps = steps }, CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryStorageInUse, error.Code);
        Assert.Contains("bucket \"mycluster-x7k2p-image-registry-us-east-1-abcdef\"", error.Message);
        // The operator prefers this secret over installer-cloud-credentials: writing the claim's keys there would
        // cut the running registry off its AWS bucket even though the config switch is refused.
        Assert.Null(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task Without_odf_the_error_says_what_serves_bucket_claims_and_that_a_registry_with_storage_needs_no_preparation()
    {
        // ARO (or ROSA, OSD): the registry is on the cloud's storage and OpenShift Data Foundation is not installed.
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", JsonNode.Parse("""
            {"spec":{"managementState":"Managed","replicas":2,"storage":{"managementState":"Managed",
              "azure":{"accountName":"imageregistryarox7k2p","container":"image-registry","cloudName":"AzurePublicCloud"}}}}
            """)!.AsObject());
        _cluster.Server.Unserve("objectbucket.io");

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryPreparation.RunAsync(_cluster.Session(), new RegistryPreparationOptions(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterObjectNotFound, error.Code);
        Assert.Contains("OpenShift Data Foundation", error.Message);
        Assert.Contains("PublishVddk", error.Message);
        Assert.DoesNotContain("see the documentation of this step", error.Message);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task An_unmanaged_registry_is_refused_before_a_claim_is_created()
    {
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", JsonNode.Parse("""
            {"spec":{"managementState":"Unmanaged","replicas":1,"storage":{"pvc":{"claim":"image-registry-storage"}}}}
            """)!.AsObject());

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryPreparation.RunAsync(_cluster.Session(), new RegistryPreparationOptions
            {
                Steps = WritingSteps,
                Bucket = new BucketClaimOptions { BoundTimeout = TimeSpan.FromMilliseconds(200) },
            }, CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryUnmanaged, error.Code);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task With_the_opt_in_the_keys_and_the_config_are_switched()
    {
        SeedAwsRegistryAndABoundClaim();

        await RegistryPreparation.RunAsync(_cluster.Session(), new RegistryPreparationOptions
        {
            Steps = WritingSteps,
            Config = new RegistryConfigOptions { ReplaceStorage = true },
        }, CancellationToken.None);

        Assert.NotNull(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
        var s3 = _cluster.Store.GetRequired(KubeResources.ImageRegistryConfigs, null, "cluster")["spec"]!["storage"]!["s3"]!;
        Assert.Equal("image-registry-bucket", s3["bucket"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_registry_already_on_the_claims_bucket_is_prepared_again_without_the_opt_in()
    {
        SeedAwsRegistryAndABoundClaim();
        _cluster.Store.Update(KubeResources.ImageRegistryConfigs, null, "cluster", c => c["spec"]!["storage"]!["s3"]!["bucket"] = "image-registry-bucket");

        await RegistryPreparation.RunAsync(_cluster.Session(), new RegistryPreparationOptions { Steps = WritingSteps }, CancellationToken.None);

        Assert.NotNull(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
    }
}
