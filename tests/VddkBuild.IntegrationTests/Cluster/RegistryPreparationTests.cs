using System.Text.Json.Nodes;
using Amazon.S3.Model;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes;
using VddkBuild.TestSupport.Kubernetes.Simulators;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>
/// PrepareVddkRegistry's engine against a simulated OpenShift whose controllers run real processes: buckets and keys
/// in Ceph RGW, docker-registry on the S3 driver started by the simulated registry operator.
/// </summary>
[Collection(CephRgw.CollectionName)]
public sealed class RegistryPreparationTests(CephRgw ceph, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Preparing_an_empty_cluster_runs_the_registry_on_a_verified_RGW_bucket_and_a_second_run_writes_nothing()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        var store = scenario.Cluster.Api.Store;

        var first = await scenario.PrepareAsync();

        var claim = store.GetRequired(KubeResources.ObjectBucketClaims, "openshift-image-registry", "openshift-image-registry");
        Assert.Equal("Bound", claim["status"]!["phase"]!.GetValue<string>());
        Assert.Equal(scenario.BucketName, first.Bucket!.BucketName);
        // The registry got the claim's own keys (read from the secret named after the claim, not after the bucket).
        var claimSecret = store.GetRequired(KubeResources.Secrets, "openshift-image-registry", "openshift-image-registry");
        var registrySecret = store.GetRequired(KubeResources.Secrets, "openshift-image-registry", "image-registry-private-configuration-user");
        Assert.Equal(claimSecret["data"]!["AWS_ACCESS_KEY_ID"]!.GetValue<string>(), registrySecret["data"]!["REGISTRY_STORAGE_S3_ACCESSKEY"]!.GetValue<string>());
        var bundle = store.GetRequired(KubeResources.ConfigMaps, "openshift-config", "image-registry-s3-bundle")["data"]!["ca-bundle.crt"]!.GetValue<string>();
        Assert.Contains(scenario.Cluster.Ingress.CaPem.Trim(), bundle);
        var config = store.GetRequired(KubeResources.ImageRegistryConfigs, null, "cluster");
        var storage = config["spec"]!["storage"]!.AsObject();
        Assert.False(storage.ContainsKey("emptyDir"), "the emptyDir left on the config must be removed, or the operator sees two storage types");
        Assert.Equal(scenario.BucketName, storage["s3"]!["bucket"]!.GetValue<string>());
        Assert.Equal($"https://{scenario.Cluster.S3Route.Authority}", storage["s3"]!["regionEndpoint"]!.GetValue<string>());
        Assert.True(config["spec"]!["defaultRoute"]!.GetValue<bool>());
        Assert.Equal(1, config["spec"]!["replicas"]!.GetValue<long>()); // the cluster's count, not forced to 2
        Assert.Equal(1, config["status"]!["readyReplicas"]!.GetValue<long>());
        Assert.True(config["spec"]!["disableRedirect"]!.GetValue<bool>());
        Assert.NotNull(store.Get(KubeResources.Routes, "openshift-image-registry", "default-route"));
        Assert.Equal(1, scenario.Cluster.RegistryOperator.RestartCount);
        Assert.Equal(scenario.BucketName, scenario.Cluster.RegistryOperator.Deployment!.Settings.Bucket);
        // The verifier cleaned up after itself: no probe object, no open multipart upload.
        using var s3 = ClusterBucket.Client(ceph, first.Bucket);
        var uploads = await s3.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = scenario.BucketName });
        Assert.Empty(uploads.MultipartUploads ?? []);
        Assert.Empty(await ClusterBucket.ListAsync(s3, scenario.BucketName, "vddkbuild-probe/"));

        scenario.Cluster.Api.ClearRequestLog();
        var second = await scenario.PrepareAsync();

        Assert.Empty(second.Changes);
        Assert.Empty(scenario.Cluster.Api.MutatingRequests);
        Assert.Equal(1, scenario.Cluster.RegistryOperator.RestartCount);
        Assert.Contains(scenario.Log.Lines, l => l.Message.Contains("already prepared", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task A_dry_run_prints_every_change_and_writes_nothing()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        scenario.Cluster.Api.ClearRequestLog();

        var plan = await scenario.PrepareAsync(dryRun: true);

        Assert.Empty(scenario.Cluster.Api.MutatingRequests);
        Assert.Equal(0, scenario.Cluster.Provisioner.BucketsCreated);
        Assert.Contains(plan.Changes, c => c.Object.Resource == ClusterResource.ObjectBucketClaims && c.Field == "spec.bucketName" && c.NewValue!.Contains(scenario.BucketName, StringComparison.Ordinal));
        Assert.Contains(plan.Changes, c => c.Field == "spec.storage.emptyDir" && c.NewValue is null);
        Assert.Contains(plan.Changes, c => c.Field == "spec.defaultRoute");
        Assert.Contains(plan.Changes, c => c.Field == "data.REGISTRY_STORAGE_S3_SECRETKEY" && c.NewValue == ClusterChange.Redacted);
        Assert.All(plan.Changes, c => Assert.Contains($"Dry run, would change {c}", scenario.Log.AllText));
    }

    [SkippableFact]
    public async Task A_taken_bucket_name_leaves_the_claim_Pending_and_fails_quoting_the_provisioners_event()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await ceph.CreateBucketAsync(scenario.BucketName); // owned by another account, as in another namespace's claim

        var error = await Assert.ThrowsAsync<VddkException>(() => scenario.PrepareAsync(scenario.Options(boundTimeout: TimeSpan.FromSeconds(4))));

        Assert.Equal(ErrorCodes.BucketClaimTimeout, error.Code);
        Assert.Contains($"Bucket \"{scenario.BucketName}\" already exists", error.Message);
        Assert.Contains("VddkBucketName", error.Message);
        Assert.Contains(scenario.Log.Warnings(ErrorCodes.BucketClaimWarningEvent), w => w.Contains("already exists", StringComparison.Ordinal));
        var claim = scenario.Cluster.Api.Store.GetRequired(KubeResources.ObjectBucketClaims, "openshift-image-registry", "openshift-image-registry");
        Assert.Equal("Pending", claim["status"]!["phase"]!.GetValue<string>());
        Assert.Equal(0, scenario.Cluster.RegistryOperator.RestartCount);
    }

    [SkippableFact]
    public async Task Without_an_ingress_certificate_the_preparation_stops_before_the_registry_config_changes()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output, new SimulatedOpenShiftOptions { PublishIngressCertificate = false });

        var error = await Assert.ThrowsAsync<VddkException>(() => scenario.PrepareAsync());

        Assert.Equal(ErrorCodes.IngressCertificateNotFound, error.Code);
        Assert.Contains("router-certs-default", error.Message);
        var config = scenario.Cluster.Api.Store.GetRequired(KubeResources.ImageRegistryConfigs, null, "cluster");
        Assert.Equal(1, config["metadata"]!["generation"]!.GetValue<long>());
        Assert.Null(scenario.Cluster.Api.Store.Get(KubeResources.Secrets, "openshift-image-registry", "image-registry-private-configuration-user"));
    }

    [SkippableFact]
    public async Task A_bundle_without_the_root_CA_leaves_the_operator_Progressing_with_an_x509_Error_and_the_wait_quotes_it()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output, new SimulatedOpenShiftOptions { RouterSecretIncludesCa = false });
        // Without the bucket check (which would catch it first, see below), the operator meets the bad bundle.
        var steps = RegistryPreparationSteps.All & ~RegistryPreparationSteps.VerifyBucket;

        var error = await Assert.ThrowsAsync<VddkException>(() => scenario.PrepareAsync(scenario.Options(steps, rolloutTimeout: TimeSpan.FromSeconds(3))));

        Assert.Equal(ErrorCodes.RegistryRolloutTimeout, error.Code);
        Assert.Contains("Progressing=True (Error)", error.Message);
        Assert.Contains("x509: certificate signed by unknown authority", error.Message);
        Assert.NotEmpty(scenario.Log.Warnings(ErrorCodes.IngressCaWithoutRoot));
        Assert.Equal(0, scenario.Cluster.RegistryOperator.RestartCount);

        var verified = await Assert.ThrowsAsync<VddkException>(() => scenario.PrepareAsync());
        Assert.Equal(ErrorCodes.BucketVerificationFailed, verified.Code);
        Assert.Contains("HeadBucket", verified.Message);
    }

    [SkippableFact]
    public async Task A_409_conflict_on_the_registry_config_is_retried_on_a_fresh_read()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        scenario.Cluster.Api.InjectFault(new KubeFault(System.Net.HttpStatusCode.Conflict) { Verb = "patch", Resource = KubeResources.ImageRegistryConfigs });

        await scenario.PrepareAsync();

        var patches = scenario.Cluster.Api.Requests.Where(r => r.Verb == "patch" && r.Resource == KubeResources.ImageRegistryConfigs).ToList();
        Assert.Equal([409, 200], patches.Select(p => p.StatusCode));
        Assert.Equal(1, scenario.Cluster.RegistryOperator.RestartCount);
    }

    [SkippableFact]
    public async Task A_user_who_may_not_patch_the_registry_config_gets_an_error_naming_the_missing_permission()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        scenario.Cluster.Api.Forbid(new KubeForbiddenRule("patch", KubeResources.ImageRegistryConfigs));

        var error = await Assert.ThrowsAsync<VddkException>(() => scenario.PrepareAsync());

        Assert.Equal(ErrorCodes.ClusterForbidden, error.Code);
        Assert.Contains($"user \"{LoopbackKubeApiServer.AdminUser}\" lacks the permission 'patch' on resource \"configs\" in API group \"imageregistry.operator.openshift.io\" at cluster scope", error.Message);
        Assert.Equal(0, scenario.Cluster.RegistryOperator.RestartCount);
    }

    [SkippableFact]
    public async Task Fields_the_operator_drops_right_after_the_patch_are_applied_again()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        scenario.Cluster.RegistryOperator.LoseSpecFieldsOnNextSync("defaultRoute");
        // The step re-reads one poll interval after its patch; give the simulated race time to happen first.
        await RegistryPreparation.RunAsync(scenario.Session(pollInterval: TimeSpan.FromSeconds(1)), scenario.Options(), CancellationToken.None);
        await scenario.Cluster.Api.WaitForControllersAsync();

        Assert.Contains(scenario.Log.Warnings(ErrorCodes.RegistryConfigReapplied), w => w.Contains("spec.defaultRoute", StringComparison.Ordinal));
        var config = scenario.Cluster.Api.Store.GetRequired(KubeResources.ImageRegistryConfigs, null, "cluster");
        Assert.True(config["spec"]!["defaultRoute"]!.GetValue<bool>());
        Assert.NotNull(scenario.Cluster.Api.Store.Get(KubeResources.Routes, "openshift-image-registry", "default-route"));
    }

    [SkippableFact]
    public async Task An_S3_endpoint_without_ListMultipartUploads_stops_the_preparation_before_the_registry_depends_on_it()
    {
        Requires.Tool("s3rver");
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await using var s3rver = await S3rverProcess.StartAsync(scenario.BucketName);
        await using var route = TlsTerminatingRoute.Start(scenario.Cluster.Ingress.IssueRouteCertificate(), s3rver.Endpoint);
        // A claim already Bound by another S3 provisioner, whose keys are s3rver's: the step adopts it.
        var store = scenario.Cluster.Api.Store;
        const string ns = "openshift-image-registry";
        store.Create(KubeResources.ObjectBucketClaims, ns, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = ns, ["namespace"] = ns },
            ["spec"] = new JsonObject { ["storageClassName"] = "openshift-storage.noobaa.io", ["bucketName"] = scenario.BucketName },
            ["status"] = new JsonObject { ["phase"] = "Bound" },
        }, keepStatus: true);
        store.Create(KubeResources.Secrets, ns, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = ns, ["namespace"] = ns },
            ["stringData"] = new JsonObject { ["AWS_ACCESS_KEY_ID"] = S3rverProcess.AccessKey, ["AWS_SECRET_ACCESS_KEY"] = S3rverProcess.SecretKey },
        });
        store.Create(KubeResources.ConfigMaps, ns, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = ns, ["namespace"] = ns },
            ["data"] = new JsonObject { ["BUCKET_NAME"] = scenario.BucketName, ["BUCKET_REGION"] = "us-east-1" },
        });
        var options = scenario.Options();
        options = options with { Bucket = options.Bucket with { S3Endpoint = route.BaseUri } };

        var error = await Assert.ThrowsAsync<VddkException>(() => scenario.PrepareAsync(options));

        Assert.Equal(ErrorCodes.BucketVerificationFailed, error.Code);
        Assert.Contains("S3 ListMultipartUploads", error.Message);
        Assert.Contains(route.BaseUri.ToString(), error.Message);
        Assert.Null(scenario.Cluster.Api.Store.Get(KubeResources.Secrets, "openshift-image-registry", "image-registry-private-configuration-user"));
        Assert.Equal(0, scenario.Cluster.RegistryOperator.RestartCount);
    }

    [SkippableFact]
    public async Task The_operator_rejects_two_storage_types_as_the_real_one_does()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        var store = scenario.Cluster.Api.Store;
        store.Update(KubeResources.ImageRegistryConfigs, null, "cluster", c =>
        {
            c["spec"]!["managementState"] = "Managed";
            c["spec"]!["storage"]!["s3"] = new JsonObject { ["bucket"] = "b", ["region"] = "us-east-1", ["regionEndpoint"] = "https://127.0.0.1:1" };
        });
        await scenario.Cluster.Api.WaitForControllersAsync();

        var progressing = store.GetRequired(KubeResources.ClusterOperators, null, "image-registry")["status"]!["conditions"]!.AsArray()
            .Single(c => c!["type"]!.GetValue<string>() == "Progressing")!;
        Assert.Equal("True", progressing["status"]!.GetValue<string>());
        Assert.Equal("Error", progressing["reason"]!.GetValue<string>());
        Assert.Contains("exactly one storage type should be configured at the same time, got 2: [EmptyDir S3]", progressing["message"]!.GetValue<string>());
    }
}
