using System.Net;
using System.Text.Json.Nodes;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

public sealed class RegistryConfigStepTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    private static readonly BucketFacts Bucket = new("image-registry-bucket-1", new Uri("https://s3-openshift-storage.apps.example.test"), "us-east-1", null, null,
        new BucketCredentials("a", "s"));

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private void SeedConfig(string managementState) =>
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", new JsonObject
        {
            ["spec"] = new JsonObject
            {
                ["managementState"] = managementState,
                ["replicas"] = 1,
                ["rolloutStrategy"] = "RollingUpdate",
                ["storage"] = new JsonObject { ["emptyDir"] = new JsonObject() },
            },
        });

    private JsonObject Spec => (JsonObject)_cluster.Store.GetRequired(KubeResources.ImageRegistryConfigs, null, "cluster")["spec"]!;

    [Fact]
    public async Task Puts_the_registry_on_s3_with_a_single_storage_type_and_the_default_route()
    {
        SeedConfig("Removed");

        var changed = await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.True(changed);
        var spec = Spec;
        Assert.Equal("Managed", spec["managementState"]!.GetValue<string>());
        Assert.Equal(1, spec["replicas"]!.GetValue<int>());
        Assert.True(spec["defaultRoute"]!.GetValue<bool>());
        Assert.True(spec["disableRedirect"]!.GetValue<bool>());
        Assert.Equal("RollingUpdate", spec["rolloutStrategy"]!.GetValue<string>());
        var storage = (JsonObject)spec["storage"]!;
        Assert.Equal(["managementState", "s3"], storage.Select(p => p.Key).Order());
        Assert.Equal("Unmanaged", storage["managementState"]!.GetValue<string>());
        var s3 = storage["s3"]!;
        Assert.Equal("image-registry-bucket-1", s3["bucket"]!.GetValue<string>());
        Assert.Equal("us-east-1", s3["region"]!.GetValue<string>());
        Assert.Equal("https://s3-openshift-storage.apps.example.test", s3["regionEndpoint"]!.GetValue<string>());
        Assert.Equal("image-registry-s3-bundle", s3["trustedCA"]!["name"]!.GetValue<string>());
        Assert.False(s3["virtualHostedStyle"]!.GetValue<bool>());
    }

    [Fact]
    public async Task An_already_managed_registry_switches_with_the_Recreate_strategy()
    {
        SeedConfig("Managed");

        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.Equal("Recreate", Spec["rolloutStrategy"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_registry_that_redirects_pulls_to_s3_is_switched_to_serving_blobs_itself()
    {
        SeedConfig("Managed");
        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);
        _cluster.Store.Update(KubeResources.ImageRegistryConfigs, null, "cluster", c => c["spec"]!["disableRedirect"] = false);
        var session = _cluster.Session();

        var changed = await RegistryConfigStep.RunAsync(session, Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.True(changed);
        Assert.True(Spec["disableRedirect"]!.GetValue<bool>());
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\": spec.disableRedirect: false -> true", session.Changes.Changes.Select(c => c.ToString()));
    }

    [Fact]
    public async Task Keeps_the_clusters_replica_count_unless_one_is_given()
    {
        SeedConfig("Removed");

        var kept = _cluster.Session(dryRun: true);
        await RegistryConfigStep.RunAsync(kept, Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);
        var given = _cluster.Session(dryRun: true);
        await RegistryConfigStep.RunAsync(given, Bucket, "image-registry-s3-bundle", new RegistryConfigOptions { Replicas = 2 }, CancellationToken.None);

        Assert.DoesNotContain(kept.Changes.Changes, c => c.Field == "spec.replicas");
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\": spec.replicas: 1 -> 2", given.Changes.Changes.Select(c => c.ToString()));
    }

    private void SeedStorage(string managementState, JsonObject storage) =>
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", new JsonObject
        {
            ["spec"] = new JsonObject { ["managementState"] = managementState, ["replicas"] = 2, ["storage"] = storage },
        });

    [Fact]
    public async Task Storage_that_holds_images_is_not_replaced_without_the_explicit_opt_in()
    {
        SeedStorage("Managed", new JsonObject { ["pvc"] = new JsonObject { ["claim"] = "image-registry-storage" } });

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None));
        Assert.Equal(ErrorCodes.RegistryStorageInUse, error.Code);
        Assert.Contains("pvc storage (claim \"image-registry-storage\")", error.Message);
        Assert.Contains("VddkReplaceRegistryStorage=true", error.Message);
        Assert.Empty(_cluster.Server.MutatingRequests);

        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions { ReplaceStorage = true }, CancellationToken.None);
        Assert.Equal(["managementState", "s3"], ((JsonObject)Spec["storage"]!).Select(p => p.Key).Order());
    }

    [Fact]
    public async Task A_removed_registry_or_one_on_the_same_bucket_is_switched_without_the_opt_in()
    {
        SeedStorage("Removed", new JsonObject { ["pvc"] = new JsonObject { ["claim"] = "image-registry-storage" } });

        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);
        _cluster.Store.Update(KubeResources.ImageRegistryConfigs, null, "cluster", c => c["spec"]!["storage"]!["s3"]!["regionEndpoint"] = "https://old.example.test");
        var changed = await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.True(changed);
        Assert.Equal("https://s3-openshift-storage.apps.example.test", Spec["storage"]!["s3"]!["regionEndpoint"]!.GetValue<string>());
    }

    [Fact]
    public async Task Switching_from_another_s3_bucket_leaves_none_of_its_fields_behind()
    {
        SeedStorage("Managed", new JsonObject
        {
            ["managementState"] = "Managed",
            ["s3"] = new JsonObject
            {
                ["bucket"] = "cluster-abc-image-registry-us-east-1", ["region"] = "us-east-1", ["encrypt"] = true, ["keyID"] = "arn:aws:kms:us-east-1:1:key/k",
                ["chunkSizeMiB"] = 10, ["virtualHostedStyle"] = true, ["cloudFront"] = new JsonObject { ["baseURL"] = "https://d1.cloudfront.net", ["keypairID"] = "K" },
                ["someFutureField"] = "x",
            },
        });

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None));
        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions { ReplaceStorage = true }, CancellationToken.None);

        Assert.Equal(ErrorCodes.RegistryStorageInUse, error.Code);
        Assert.Contains("s3 storage (bucket \"cluster-abc-image-registry-us-east-1\")", error.Message);
        Assert.Equal(["bucket", "region", "regionEndpoint", "trustedCA", "virtualHostedStyle"], ((JsonObject)Spec["storage"]!["s3"]!).Select(p => p.Key).Order());
        Assert.Equal("Unmanaged", Spec["storage"]!["managementState"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_unmanaged_registry_is_left_to_its_administrator()
    {
        SeedStorage("Unmanaged", new JsonObject { ["emptyDir"] = new JsonObject() });

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions { ReplaceStorage = true }, CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryUnmanaged, error.Code);
        Assert.Contains("managementState Unmanaged", error.Message);
        Assert.Empty(_cluster.Server.MutatingRequests);
        Assert.Equal("Unmanaged", Spec["managementState"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_second_run_makes_no_mutating_request()
    {
        SeedConfig("Managed");
        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);
        _cluster.Server.ClearRequestLog();

        var changed = await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.False(changed);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task Dry_run_lists_every_field_old_to_new_and_writes_nothing()
    {
        SeedConfig("Removed");
        var session = _cluster.Session(dryRun: true);

        var changed = await RegistryConfigStep.RunAsync(session, Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.True(changed);
        Assert.Empty(_cluster.Server.MutatingRequests);
        Assert.Equal(1, Spec["replicas"]!.GetValue<int>());
        var lines = session.Changes.Changes.Select(c => c.ToString()).ToList();
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\": spec.managementState: Removed -> Managed", lines);
        Assert.DoesNotContain(lines, l => l.Contains("spec.replicas"));
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\": spec.storage.emptyDir: {} -> <none>", lines);
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\": spec.storage.s3.bucket: <none> -> image-registry-bucket-1", lines);
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\": spec.defaultRoute: <none> -> true", lines);
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\": spec.disableRedirect: <none> -> true", lines);
        Assert.Contains(_cluster.Log.Lines, l => l.StartsWith("Dry run, would change configs.imageregistry.operator.openshift.io \"cluster\": spec.managementState", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_conflict_is_retried_on_the_latest_version()
    {
        SeedConfig("Removed");
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.Conflict, Times: 2) { Verb = "patch", Resource = KubeResources.ImageRegistryConfigs });

        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.Equal([409, 409, 200], _cluster.Server.MutatingRequests.Select(r => r.StatusCode));
        Assert.Equal("Managed", Spec["managementState"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_conflict_that_never_ends_is_a_clear_error()
    {
        SeedConfig("Removed");
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.Conflict, Times: 100) { Verb = "patch", Resource = KubeResources.ImageRegistryConfigs });

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterConflict, error.Code);
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\"", error.Message);
        Assert.Equal(5, _cluster.Server.MutatingRequests.Count);
    }

    [Fact]
    public async Task Fields_the_operator_drops_after_the_patch_are_applied_again()
    {
        SeedConfig("Removed");
        var dropped = 0;
        using var racingOperator = _cluster.Server.OnChange(KubeResources.ImageRegistryConfigs, (change, _) =>
        {
            if (change.Type == KubeChangeType.Modified && change.New!["spec"]!["defaultRoute"] is not null && Interlocked.Increment(ref dropped) == 1)
            {
                _cluster.Store.Update(change.Resource, null, change.Name, config => ((JsonObject)config["spec"]!).Remove("defaultRoute"));
            }
            return Task.CompletedTask;
        });
        await RegistryConfigStep.RunAsync(_cluster.Session(pollInterval: TimeSpan.FromMilliseconds(200)), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.True(Spec["defaultRoute"]!.GetValue<bool>());
        Assert.Equal(2, _cluster.Server.MutatingRequests.Count);
        Assert.Contains(_cluster.Log.Warnings, w => w.Code == ErrorCodes.RegistryConfigReapplied && w.Message.Contains("spec.defaultRoute"));
    }

    [Fact]
    public async Task A_missing_config_means_the_operator_is_not_installed()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterObjectNotFound, error.Code);
        Assert.Contains("operator is not installed", error.Message);
    }

    [Theory]
    [InlineData(HttpStatusCode.Forbidden, "admission webhook \"regular-user-validation.managed.openshift.io\" denied the request: Prevented from accessing Red Hat managed resources.", "admission webhook \"regular-user-validation.managed.openshift.io\"")]
    [InlineData(HttpStatusCode.BadRequest, "admission webhook \"registry-guard.example.com\" denied the request: storage changes need a change ticket", "admission webhook \"registry-guard.example.com\"")]
    [InlineData(HttpStatusCode.Forbidden, "configs.imageregistry.operator.openshift.io \"cluster\" is forbidden: ValidatingAdmissionPolicy 'freeze-registry' with binding 'freeze-registry-binding' denied request: frozen", "ValidatingAdmissionPolicy 'freeze-registry'")]
    public async Task A_patch_refused_by_an_admission_policy_names_the_policy_not_a_missing_rbac_permission(HttpStatusCode status, string message, string policy)
    {
        // Managed clusters (OpenShift Dedicated, ROSA) guard the objects their provider manages with webhooks: the user
        // has the RBAC permission, and granting it again does not help.
        SeedConfig("Removed");
        _cluster.Server.InjectFault(new KubeFault(status) { Verb = "patch", Resource = KubeResources.ImageRegistryConfigs, Reason = status == HttpStatusCode.Forbidden ? "Forbidden" : "BadRequest", Message = message });

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None));

        Assert.Equal(status == HttpStatusCode.Forbidden ? ErrorCodes.ClusterForbidden : ErrorCodes.ClusterRequestFailed, error.Code);
        Assert.Contains(policy, error.Message);
        Assert.Contains("not a missing RBAC permission", error.Message);
        Assert.DoesNotContain("lacks the permission", error.Message);
        Assert.DoesNotContain("is missing", error.Message);
        Assert.Contains("configs.imageregistry.operator.openshift.io \"cluster\"", error.Message);
    }

    /// <summary>The cluster-wide proxy as the installer leaves it: status.noProxy has the cluster's own names and networks, not the apps domain.</summary>
    private void SeedClusterProxy(string extraNoProxy = "") =>
        _cluster.Seed(KubeResources.Proxies, null, "cluster", JsonNode.Parse($$$"""
            {"spec":{"httpsProxy":"http://svc-registry:Proxy-Pa55@proxy.corp.example:3128"},
             "status":{"httpProxy":"http://svc-registry:Proxy-Pa55@proxy.corp.example:3128","httpsProxy":"http://svc-registry:Proxy-Pa55@proxy.corp.example:3128",
               "noProxy":".cluster.local,.svc,10.0.0.0/16,10.128.0.0/14,127.0.0.1,169.254.169.254,172.30.0.0/16,api-int.example.test,localhost{{{extraNoProxy}}}"}}
            """)!.AsObject());

    [Fact]
    public async Task A_cluster_proxy_whose_no_proxy_leaves_out_the_s3_host_is_a_warning_naming_both_without_the_proxy_password()
    {
        // The operator gives the registry the cluster proxy's HTTPS_PROXY/NO_PROXY: the S3 route's host goes to the proxy.
        SeedConfig("Removed");
        SeedClusterProxy();

        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        var (code, message) = Assert.Single(_cluster.Log.Warnings, w => w.Code == ErrorCodes.RegistryS3ThroughProxy);
        Assert.Contains("s3-openshift-storage.apps.example.test", message);
        Assert.Contains("proxy.corp.example:3128", message);
        Assert.Contains("noProxy", message);
        Assert.DoesNotContain("Pa55", _cluster.Log.All);
    }

    [Theory]
    [InlineData(",.apps.example.test", null)]
    [InlineData(",s3-openshift-storage.apps.example.test", null)]
    [InlineData("", ".svc,.apps.example.test")]
    public async Task No_proxy_covering_the_s3_host_in_the_cluster_proxy_or_the_registry_configs_own_proxy_is_no_warning(string clusterNoProxy, string? registryNoProxy)
    {
        SeedConfig("Removed");
        SeedClusterProxy(clusterNoProxy);
        if (registryNoProxy is not null)
        {
            _cluster.Store.Patch(KubeResources.ImageRegistryConfigs, null, "cluster", new JsonObject { ["spec"] = new JsonObject { ["proxy"] = new JsonObject { ["noProxy"] = registryNoProxy } } });
        }

        await RegistryConfigStep.RunAsync(_cluster.Session(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.DoesNotContain(_cluster.Log.Warnings, w => w.Code == ErrorCodes.RegistryS3ThroughProxy);
    }

    [Fact]
    public async Task An_s3_endpoint_outside_the_ingress_domain_is_left_to_the_proxy_without_a_warning()
    {
        SeedConfig("Removed");
        SeedClusterProxy();
        _cluster.Seed(KubeResources.IngressConfigs, null, "cluster", new JsonObject { ["spec"] = new JsonObject { ["domain"] = "apps.example.test" } });
        var external = Bucket with { Endpoint = new Uri("https://s3.objects.corp.example") };

        await RegistryConfigStep.RunAsync(_cluster.Session(), external, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None);

        Assert.DoesNotContain(_cluster.Log.Warnings, w => w.Code == ErrorCodes.RegistryS3ThroughProxy);
    }

    [Fact]
    public async Task Forbidden_patch_names_the_cluster_scoped_permission()
    {
        SeedConfig("Removed");
        _cluster.Server.Forbid(new KubeForbiddenRule("patch", KubeResources.ImageRegistryConfigs));

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryConfigStep.RunAsync(_cluster.DeveloperSession(), Bucket, "image-registry-s3-bundle", new RegistryConfigOptions(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterForbidden, error.Code);
        Assert.Contains("lacks the permission 'patch' on resource \"configs\" in API group \"imageregistry.operator.openshift.io\" at cluster scope", error.Message);
    }
}
