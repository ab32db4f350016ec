using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

/// <summary>The loopback API server behaves like a Kubernetes API server for KubernetesClient.</summary>
public sealed class LoopbackKubeApiServerTests : IAsyncLifetime
{
    private LoopbackKubeApiServer _server = null!;
    private Kubernetes _client = null!;

    public async Task InitializeAsync()
    {
        _server = await LoopbackKubeApiServer.StartAsync();
        _server.Store.Create(KubeResources.Namespaces, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "demo" } });
        _client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(_server.KubeconfigPath));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Kubeconfig_verifies_the_generated_ca_and_authenticates_with_the_token()
    {
        var created = await _client.CoreV1.CreateNamespacedConfigMapAsync(
            new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "facts" }, Data = new Dictionary<string, string> { ["a"] = "1" } }, "demo");

        Assert.Equal("facts", created.Metadata.Name);
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.Equal(LoopbackKubeApiServer.AdminUser, _server.Requests.Single().User);
        Assert.Equal(201, _server.Requests.Single().StatusCode);
    }

    [Fact]
    public async Task A_wrong_token_is_refused_with_401()
    {
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(_server.KubeconfigPath);
        config.AccessToken = "not-a-token";
        using var client = new Kubernetes(config);

        var error = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.ListNamespacedSecretAsync("demo"));

        Assert.Equal(HttpStatusCode.Unauthorized, error.Response.StatusCode);
    }

    [Fact]
    public async Task Creating_twice_is_409_AlreadyExists_and_a_missing_object_is_404_NotFound_with_details()
    {
        var secret = new V1Secret { Metadata = new V1ObjectMeta { Name = "keys" }, StringData = new Dictionary<string, string> { ["k"] = "v" } };
        var created = await _client.CoreV1.CreateNamespacedSecretAsync(secret, "demo");
        Assert.Equal("v", Encoding.UTF8.GetString(created.Data["k"]));

        var exists = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedSecretAsync(secret, "demo"));
        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedSecretAsync("nope", "demo"));

        Assert.Equal(HttpStatusCode.Conflict, exists.Response.StatusCode);
        Assert.Equal("AlreadyExists", JsonNode.Parse(exists.Response.Content)!["reason"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
        var status = JsonNode.Parse(missing.Response.Content)!;
        Assert.Equal("NotFound", status["reason"]!.GetValue<string>());
        Assert.Equal("nope", status["details"]!["name"]!.GetValue<string>());
        Assert.Equal("secrets \"nope\" not found", status["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Creating_in_a_missing_namespace_is_404()
    {
        var error = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "x" } }, "absent"));

        Assert.Equal(HttpStatusCode.NotFound, error.Response.StatusCode);
        Assert.Equal("namespaces \"absent\" not found", JsonNode.Parse(error.Response.Content)!["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Merge_patch_null_deletes_a_field_and_bumps_generation_only_on_spec_changes()
    {
        SeedRegistryConfig();
        var patch = new JsonObject { ["spec"] = new JsonObject { ["storage"] = new JsonObject { ["emptyDir"] = null, ["s3"] = new JsonObject { ["bucket"] = "b" } } } };

        var patched = await PatchConfigAsync(patch);
        var again = await PatchConfigAsync(patch);
        _server.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, "cluster", status => status["readyReplicas"] = 2);
        var afterStatus = _server.Store.GetRequired(KubeResources.ImageRegistryConfigs, null, "cluster");

        Assert.Null(patched["spec"]!["storage"]!["emptyDir"]);
        Assert.Equal("b", patched["spec"]!["storage"]!["s3"]!["bucket"]!.GetValue<string>());
        Assert.Equal(2, patched["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal(patched["metadata"]!["resourceVersion"]!.GetValue<string>(), again["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal(2, afterStatus["metadata"]!["generation"]!.GetValue<long>());
        Assert.NotEqual(patched["metadata"]!["resourceVersion"]!.GetValue<string>(), afterStatus["metadata"]!["resourceVersion"]!.GetValue<string>());
    }

    [Fact]
    public async Task Strategic_merge_patch_on_a_core_object_merges_maps()
    {
        await _client.CoreV1.CreateNamespacedConfigMapAsync(
            new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "m" }, Data = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" } }, "demo");

        var patched = await _client.CoreV1.PatchNamespacedConfigMapAsync(
            new V1Patch("""{"data":{"b":null,"c":"3"}}""", V1Patch.PatchType.StrategicMergePatch), "m", "demo");

        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["c"] = "3" }, patched.Data);
    }

    [Fact]
    public async Task Update_with_a_stale_resourceVersion_is_409_Conflict()
    {
        var created = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "c" } }, "demo");
        created.Data = new Dictionary<string, string> { ["x"] = "1" };
        await _client.CoreV1.ReplaceNamespacedConfigMapAsync(created, "c", "demo");

        created.Data["x"] = "2";
        var error = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedConfigMapAsync(created, "c", "demo"));

        Assert.Equal(HttpStatusCode.Conflict, error.Response.StatusCode);
        var status = JsonNode.Parse(error.Response.Content)!;
        Assert.Equal("Conflict", status["reason"]!.GetValue<string>());
        Assert.Contains("the object has been modified", status["message"]!.GetValue<string>());
    }

    [Fact]
    public async Task Status_writes_through_the_main_resource_are_ignored()
    {
        SeedRegistryConfig();

        var patched = await PatchConfigAsync(new JsonObject { ["status"] = new JsonObject { ["readyReplicas"] = 5 } });

        Assert.Null(patched["status"]?["readyReplicas"]);
    }

    [Fact]
    public async Task Forbidden_rule_answers_403_with_the_authorizers_message()
    {
        var token = _server.AddUser("developer");
        var path = _server.WriteKubeconfig(Path.Combine(Path.GetTempPath(), $"kc-{Guid.NewGuid():N}"), token);
        try
        {
            _server.Forbid(new KubeForbiddenRule("create", KubeResources.Secrets) { User = "developer" });
            using var developer = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(path));

            var error = await Assert.ThrowsAsync<HttpOperationException>(() =>
                developer.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "s" } }, "demo"));
            await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "s" } }, "demo");

            Assert.Equal(HttpStatusCode.Forbidden, error.Response.StatusCode);
            Assert.Equal(
                "secrets is forbidden: User \"developer\" cannot create resource \"secrets\" in API group \"\" in the namespace \"demo\"",
                JsonNode.Parse(error.Response.Content)!["message"]!.GetValue<string>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Token_request_issues_a_token_that_authenticates_as_the_service_account()
    {
        await _client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "builder" } }, "demo");

        var response = await _client.CoreV1.CreateNamespacedServiceAccountTokenAsync(
            new Authenticationv1TokenRequest { Spec = new V1TokenRequestSpec { ExpirationSeconds = 600 } }, "builder", "demo");
        var issued = _server.Tokens.Validate(response.Status.Token);
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(_server.KubeconfigPath);
        config.AccessToken = response.Status.Token;
        using var asBuilder = new Kubernetes(config);
        await asBuilder.CoreV1.ListNamespacedConfigMapAsync("demo");

        Assert.NotNull(issued);
        Assert.Equal("system:serviceaccount:demo:builder", issued.UserName);
        Assert.InRange((response.Status.ExpirationTimestamp!.Value - DateTime.UtcNow).TotalSeconds, 590, 601);
        Assert.Equal("system:serviceaccount:demo:builder", _server.Requests[^1].User);
    }

    [Fact]
    public async Task Token_request_below_ten_minutes_or_for_a_missing_account_fails()
    {
        await _client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "builder" } }, "demo");

        var tooShort = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedServiceAccountTokenAsync(
            new Authenticationv1TokenRequest { Spec = new V1TokenRequestSpec { ExpirationSeconds = 60 } }, "builder", "demo"));
        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedServiceAccountTokenAsync(
            new Authenticationv1TokenRequest { Spec = new V1TokenRequestSpec() }, "nobody", "demo"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooShort.Response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
    }

    [Fact]
    public async Task Events_are_listed_by_involved_object_name()
    {
        _server.Store.RecordEvent(KubeResources.ObjectBucketClaims, "demo", "claim", "Warning", "ProvisioningFailed", "Bucket \"b\" already exists");
        _server.Store.RecordEvent(KubeResources.ObjectBucketClaims, "demo", "other", "Normal", "Provisioned", "ok");

        var events = await _client.CoreV1.ListNamespacedEventAsync("demo", fieldSelector: "involvedObject.name=claim,type=Warning");

        var only = Assert.Single(events.Items);
        Assert.Equal("Bucket \"b\" already exists", only.Message);
    }

    [Fact]
    public async Task Labels_select_list_items()
    {
        foreach (var (name, tier) in new[] { ("a", "x"), ("b", "y"), ("c", "z") })
        {
            await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["tier"] = tier } } }, "demo");
        }

        var selected = await _client.CoreV1.ListNamespacedConfigMapAsync("demo", labelSelector: "tier in (x,z),tier!=z");

        Assert.Equal(["a"], selected.Items.Select(i => i.Metadata.Name));
    }

    [Fact]
    public async Task Injected_faults_fail_the_next_matching_requests_then_stop()
    {
        SeedRegistryConfig();
        _server.InjectFault(new KubeFault(HttpStatusCode.Conflict, Times: 1) { Verb = "patch", Resource = KubeResources.ImageRegistryConfigs });
        var patch = new JsonObject { ["spec"] = new JsonObject { ["replicas"] = 3 } };

        var first = await Assert.ThrowsAsync<HttpOperationException>(() => PatchConfigAsync(patch));
        await PatchConfigAsync(patch);

        Assert.Equal(HttpStatusCode.Conflict, first.Response.StatusCode);
        Assert.Equal([409, 200], _server.MutatingRequests.Select(r => r.StatusCode));
    }

    [Fact]
    public async Task Controllers_see_changes_after_the_response_and_can_write_status()
    {
        using var subscription = _server.OnChange(KubeResources.ObjectBucketClaims, (change, _) =>
        {
            if (change.Type == KubeChangeType.Added)
            {
                _server.Store.UpdateStatus(change.Resource, change.Namespace, change.Name, status => status["phase"] = "Bound");
            }
            return Task.CompletedTask;
        });

        await _client.CustomObjects.CreateNamespacedCustomObjectAsync(
            new JsonObject { ["apiVersion"] = "objectbucket.io/v1alpha1", ["kind"] = "ObjectBucketClaim", ["metadata"] = new JsonObject { ["name"] = "claim" }, ["spec"] = new JsonObject() },
            "objectbucket.io", "v1alpha1", "demo", "objectbucketclaims");
        await _server.WaitForControllersAsync();

        Assert.Equal("Bound", _server.Store.GetRequired(KubeResources.ObjectBucketClaims, "demo", "claim")["status"]!["phase"]!.GetValue<string>());
        Assert.Empty(_server.ControllerErrors);
        Assert.Single(_server.MutatingRequests);
    }

    [Fact]
    public async Task Validators_refuse_writes_with_422_Invalid()
    {
        SeedRegistryConfig();
        _server.Store.AddValidator(KubeResources.ImageRegistryConfigs, (_, next) =>
            next["spec"]?["replicas"]?.GetValue<int>() < 0 ? "spec.replicas: Invalid value: must be at least 0" : null);

        var error = await Assert.ThrowsAsync<HttpOperationException>(() => PatchConfigAsync(new JsonObject { ["spec"] = new JsonObject { ["replicas"] = -1 } }));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, error.Response.StatusCode);
        Assert.StartsWith("Config.imageregistry.operator.openshift.io \"cluster\" is invalid: spec.replicas", JsonNode.Parse(error.Response.Content)!["message"]!.GetValue<string>());
    }

    private void SeedRegistryConfig() =>
        _server.Store.Create(KubeResources.ImageRegistryConfigs, null, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "cluster" },
            ["spec"] = new JsonObject { ["managementState"] = "Removed", ["replicas"] = 1, ["storage"] = new JsonObject { ["emptyDir"] = new JsonObject() } },
        });

    private async Task<JsonNode> PatchConfigAsync(JsonObject patch)
    {
        var result = await _client.CustomObjects.PatchClusterCustomObjectAsync(
            new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), "imageregistry.operator.openshift.io", "v1", "configs", "cluster");
        return JsonNode.Parse(KubernetesJson.Serialize(result))!;
    }
}
