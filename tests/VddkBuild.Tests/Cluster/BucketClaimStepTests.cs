using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

public sealed class BucketClaimStepTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private static BucketClaimOptions Options => new() { BoundTimeout = TimeSpan.FromMilliseconds(400) };

    /// <summary>A provisioner like lib-bucket-provisioner: a generated bucket name in .spec, Secret and ConfigMap named after the claim, phase Bound.</summary>
    private IDisposable PlugProvisioner(string generatedBucket, string bucketHost = "s3.openshift-storage.svc") =>
        _cluster.Server.OnChange(KubeResources.ObjectBucketClaims, (change, _) =>
        {
            if (change.Type != KubeChangeType.Added)
            {
                return Task.CompletedTask;
            }
            var ns = change.Namespace!;
            _cluster.Store.Update(change.Resource, ns, change.Name, claim => claim["spec"]!["bucketName"] = generatedBucket);
            _cluster.SeedSecret(ns, change.Name, ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "very-secret-key"));
            _cluster.Seed(KubeResources.ConfigMaps, ns, change.Name, new JsonObject
            {
                ["data"] = new JsonObject { ["BUCKET_NAME"] = generatedBucket, ["BUCKET_HOST"] = bucketHost, ["BUCKET_PORT"] = "443", ["BUCKET_REGION"] = "" },
            });
            _cluster.Store.UpdateStatus(change.Resource, ns, change.Name, status => status["phase"] = "Bound");
            return Task.CompletedTask;
        });

    private void SeedS3Route() =>
        _cluster.Seed(KubeResources.Routes, "openshift-storage", "s3", new JsonObject { ["spec"] = new JsonObject { ["host"] = "s3-openshift-storage.apps.example.test" } });

    [Fact]
    public async Task Creates_the_claim_waits_for_Bound_and_reads_facts_from_the_objects_named_after_the_claim()
    {
        SeedS3Route();
        using var provisioner = PlugProvisioner("image-registry-bucket-4f1c2d");

        var facts = await BucketClaimStep.RunAsync(_cluster.Session(), Options with { BoundTimeout = TimeSpan.FromSeconds(10) }, CancellationToken.None);

        Assert.Equal("image-registry-bucket-4f1c2d", facts.BucketName);
        Assert.Equal(new Uri("https://s3-openshift-storage.apps.example.test"), facts.Endpoint);
        Assert.Equal("us-east-1", facts.Region);
        Assert.Equal(443, facts.InternalPort);
        Assert.Equal("AKIDEXAMPLE", facts.Credentials.AccessKeyId);
        Assert.Equal("very-secret-key", facts.Credentials.SecretAccessKey);
        Assert.DoesNotContain("very-secret-key", facts.ToString());
        Assert.DoesNotContain("very-secret-key", _cluster.Log.All);
        var claim = _cluster.Store.GetRequired(KubeResources.ObjectBucketClaims, "openshift-image-registry", "openshift-image-registry");
        Assert.Equal("openshift-storage.noobaa.io", claim["spec"]!["storageClassName"]!.GetValue<string>());
        Assert.Empty(_cluster.Server.ControllerErrors);
    }

    [Fact]
    public async Task A_second_run_adopts_the_claim_without_any_mutating_request()
    {
        SeedS3Route();
        using var provisioner = PlugProvisioner("bucket-x");
        await BucketClaimStep.RunAsync(_cluster.Session(), Options with { BoundTimeout = TimeSpan.FromSeconds(10) }, CancellationToken.None);
        _cluster.Server.ClearRequestLog();

        var facts = await BucketClaimStep.RunAsync(_cluster.Session(), Options, CancellationToken.None);

        Assert.Equal("bucket-x", facts.BucketName);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task A_claim_left_Pending_times_out_with_the_provisioners_warning_event()
    {
        SeedS3Route();
        using var failingProvisioner = _cluster.Server.OnChange(KubeResources.ObjectBucketClaims, (change, _) =>
        {
            if (change.Type == KubeChangeType.Added)
            {
                _cluster.Store.UpdateStatus(change.Resource, change.Namespace, change.Name, status => status["phase"] = "Pending");
                _cluster.Store.RecordEvent(change.Resource, change.Namespace!, change.Name, "Warning", "ProvisioningFailed",
                    "error provisioning bucket: Bucket \"image-registry-bucket\" already exists");
            }
            return Task.CompletedTask;
        });

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketClaimStep.RunAsync(_cluster.Session(), Options, CancellationToken.None));

        Assert.Equal(ErrorCodes.BucketClaimTimeout, error.Code);
        Assert.Contains("Bucket \"image-registry-bucket\" already exists", error.Message);
        Assert.Contains("Pending", error.Message);
        var warning = Assert.Single(_cluster.Log.Warnings);
        Assert.Equal(ErrorCodes.BucketClaimWarningEvent, warning.Code);
    }

    [Fact]
    public async Task A_Failed_claim_fails_at_once_quoting_its_status()
    {
        SeedS3Route();
        using var failingProvisioner = _cluster.Server.OnChange(KubeResources.ObjectBucketClaims, (change, _) =>
        {
            if (change.Type == KubeChangeType.Added)
            {
                _cluster.Store.UpdateStatus(change.Resource, change.Namespace, change.Name, status =>
                {
                    status["phase"] = "Failed";
                    status["conditions"] = new JsonArray(new JsonObject { ["type"] = "Provisioned", ["status"] = "False", ["message"] = "quota exceeded in backingstore" });
                });
            }
            return Task.CompletedTask;
        });

        var started = DateTimeOffset.UtcNow;
        var error = await Assert.ThrowsAsync<VddkException>(() =>
            BucketClaimStep.RunAsync(_cluster.Session(), new BucketClaimOptions { BoundTimeout = TimeSpan.FromMinutes(5) }, CancellationToken.None));

        Assert.Equal(ErrorCodes.BucketClaimFailed, error.Code);
        Assert.Contains("is Failed", error.Message);
        Assert.Contains("quota exceeded in backingstore", error.Message);
        Assert.True(DateTimeOffset.UtcNow - started < TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Dry_run_plans_the_claim_and_writes_nothing()
    {
        SeedS3Route();
        var session = _cluster.Session(dryRun: true);

        var facts = await BucketClaimStep.RunAsync(session, Options, CancellationToken.None);

        Assert.True(facts.Planned);
        Assert.Equal("image-registry-bucket", facts.BucketName);
        Assert.Empty(_cluster.Server.MutatingRequests);
        Assert.Null(_cluster.Store.Get(KubeResources.ObjectBucketClaims, "openshift-image-registry", "openshift-image-registry"));
        Assert.Contains(session.Changes.Changes, c => c.Field == "spec.bucketName" && c.OldValue is null && c.NewValue == "image-registry-bucket");
        Assert.Contains(session.Changes.Changes, c => c.Field == "spec.storageClassName" && c.NewValue == "openshift-storage.noobaa.io");
    }

    [Fact]
    public async Task Without_the_s3_route_the_error_points_at_VddkS3Endpoint_and_the_override_works()
    {
        using var provisioner = PlugProvisioner("b");

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketClaimStep.RunAsync(_cluster.Session(), Options with { BoundTimeout = TimeSpan.FromSeconds(10) }, CancellationToken.None));
        var facts = await BucketClaimStep.RunAsync(_cluster.Session(), Options with { S3Endpoint = new Uri("https://s3.example.test:8443") }, CancellationToken.None);

        Assert.Equal(ErrorCodes.S3EndpointNotFound, error.Code);
        Assert.Contains("VddkS3Endpoint", error.Message);
        Assert.Equal(new Uri("https://s3.example.test:8443"), facts.Endpoint);
    }

    private const string RgwService = "rook-ceph-rgw-ocs-storagecluster-cephobjectstore";

    private void SeedRoute(string name, string service, string host) =>
        _cluster.Seed(KubeResources.Routes, "openshift-storage", name, new JsonObject
        {
            ["spec"] = new JsonObject { ["host"] = host, ["to"] = new JsonObject { ["kind"] = "Service", ["name"] = service } },
        });

    [Fact]
    public async Task A_claim_of_the_ceph_object_gateway_is_reached_through_the_route_of_its_own_service_not_noobaas()
    {
        // ODF's RGW storage class (ocs-storagecluster-ceph-rgw): the bucket and its keys live in Ceph, not in NooBaa.
        SeedRoute("s3", "s3", "s3-openshift-storage.apps.example.test");
        SeedRoute("ocs-storagecluster-cephobjectstore", RgwService, "ocs-storagecluster-cephobjectstore-openshift-storage.apps.example.test");
        using var provisioner = PlugProvisioner("rgw-bucket", $"{RgwService}.openshift-storage.svc");

        var facts = await BucketClaimStep.RunAsync(_cluster.Session(), Options with { StorageClass = "ocs-storagecluster-ceph-rgw", BoundTimeout = TimeSpan.FromSeconds(10) }, CancellationToken.None);

        Assert.Equal(new Uri("https://ocs-storagecluster-cephobjectstore-openshift-storage.apps.example.test"), facts.Endpoint);
    }

    [Fact]
    public async Task A_claim_whose_service_has_no_route_is_not_sent_to_another_services_route()
    {
        SeedRoute("s3", "s3", "s3-openshift-storage.apps.example.test");
        using var provisioner = PlugProvisioner("rgw-bucket", $"{RgwService}.openshift-storage.svc");

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            BucketClaimStep.RunAsync(_cluster.Session(), Options with { StorageClass = "ocs-storagecluster-ceph-rgw", BoundTimeout = TimeSpan.FromSeconds(10) }, CancellationToken.None));

        Assert.Equal(ErrorCodes.S3EndpointNotFound, error.Code);
        Assert.Contains(RgwService, error.Message);
        Assert.Contains("VddkS3Endpoint", error.Message);
    }

    [Fact]
    public async Task A_bound_claim_without_its_secret_keys_is_reported()
    {
        SeedS3Route();
        _cluster.Seed(KubeResources.ObjectBucketClaims, "openshift-image-registry", "openshift-image-registry", new JsonObject
        {
            ["spec"] = new JsonObject { ["storageClassName"] = "openshift-storage.noobaa.io", ["bucketName"] = "b" },
            ["status"] = new JsonObject { ["phase"] = "Bound" },
        });
        _cluster.SeedSecret("openshift-image-registry", "openshift-image-registry", ("AWS_ACCESS_KEY_ID", "a"));
        _cluster.Seed(KubeResources.ConfigMaps, "openshift-image-registry", "openshift-image-registry", new JsonObject { ["data"] = new JsonObject() });

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketClaimStep.RunAsync(_cluster.Session(), Options, CancellationToken.None));

        Assert.Equal(ErrorCodes.BucketClaimIncomplete, error.Code);
        Assert.Contains("AWS_SECRET_ACCESS_KEY", error.Message);
    }

    [Fact]
    public async Task Forbidden_create_names_the_missing_permission()
    {
        SeedS3Route();
        _cluster.Server.Forbid(new KubeForbiddenRule("create", KubeResources.ObjectBucketClaims) { User = "developer" });

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketClaimStep.RunAsync(_cluster.DeveloperSession(), Options, CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterForbidden, error.Code);
        Assert.Contains("user \"developer\" lacks the permission 'create' on resource \"objectbucketclaims\" in API group \"objectbucket.io\" in namespace \"openshift-image-registry\"", error.Message);
    }

    [Fact]
    public async Task A_claim_created_concurrently_is_adopted()
    {
        SeedS3Route();
        using var provisioner = PlugProvisioner("b");
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.Conflict) { Verb = "create", Resource = KubeResources.ObjectBucketClaims, Reason = "AlreadyExists", Message = "objectbucketclaims.objectbucket.io \"openshift-image-registry\" already exists" });

        var facts = await BucketClaimStep.RunAsync(_cluster.Session(), Options with { BoundTimeout = TimeSpan.FromSeconds(10) }, CancellationToken.None);

        Assert.Equal("b", facts.BucketName);
        Assert.Equal([409, 201], _cluster.Server.MutatingRequests.Select(r => r.StatusCode));
    }
}
