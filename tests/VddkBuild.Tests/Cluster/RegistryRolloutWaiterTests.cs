using System.Text.Json.Nodes;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

public sealed class RegistryRolloutWaiterTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private static JsonObject Condition(string type, string status, string reason = "AsExpected", string message = "") =>
        new() { ["type"] = type, ["status"] = status, ["reason"] = reason, ["message"] = message };

    private void Seed(long generation, long observed, int ready, params JsonObject[] operatorConditions)
    {
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", new JsonObject
        {
            ["spec"] = new JsonObject { ["managementState"] = "Managed", ["replicas"] = 2 },
            ["status"] = new JsonObject { ["observedGeneration"] = observed, ["readyReplicas"] = ready },
        });
        for (var g = 1; g < generation; g++)
        {
            // Only spec changes bump metadata.generation, as on the real server.
            _cluster.Store.Update(KubeResources.ImageRegistryConfigs, null, "cluster", c => c["spec"]!["logLevel"] = $"Level{g}");
        }
        _cluster.Seed(KubeResources.ClusterOperators, null, "image-registry", new JsonObject
        {
            ["status"] = new JsonObject { ["conditions"] = new JsonArray(operatorConditions.Cast<JsonNode>().ToArray()) },
        });
    }

    private static JsonObject[] Healthy => [Condition("Available", "True"), Condition("Progressing", "False"), Condition("Degraded", "False")];

    [Fact]
    public async Task Waits_until_the_new_generation_is_observed_and_all_replicas_are_ready()
    {
        // Available=True from the old deployment already: that alone must not end the wait.
        Seed(generation: 3, observed: 2, ready: 1, Condition("Available", "True"), Condition("Progressing", "True", "Progressing", "deployment is progressing"), Condition("Degraded", "False"));
        var waiting = RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(20), CancellationToken.None);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);

        _cluster.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, "cluster", s => { s["observedGeneration"] = 3; s["readyReplicas"] = 2; });
        _cluster.Store.UpdateStatus(KubeResources.ClusterOperators, null, "image-registry", s => s["conditions"] = new JsonArray(Healthy.Cast<JsonNode>().ToArray()));
        await waiting;

        Assert.Contains(_cluster.Log.Lines, l => l.StartsWith("Waiting for the image registry: observed generation 2/3, ready replicas 1/2", StringComparison.Ordinal));
        Assert.Contains(_cluster.Log.Lines, l => l.Contains("2/2 replicas ready"));
    }

    [Fact]
    public async Task Times_out_quoting_the_operators_error_condition()
    {
        const string x509 = "Unable to apply resources: unable to sync storage configuration: RequestError: send request failed caused by: x509: certificate signed by unknown authority";
        Seed(generation: 2, observed: 2, ready: 0, Condition("Available", "False", "NoReplicasAvailable", "The deployment does not have available replicas"),
            Condition("Progressing", "True", "Error", x509), Condition("Degraded", "False"));

        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromMilliseconds(300), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryRolloutTimeout, error.Code);
        Assert.Contains($"Progressing=True (Error): {x509}", error.Message);
        Assert.Contains("Available=False (NoReplicasAvailable)", error.Message);
    }

    [Fact]
    public async Task Degraded_fails_at_once_with_the_message()
    {
        Seed(generation: 2, observed: 2, ready: 0, Condition("Available", "False"), Condition("Progressing", "False"),
            Condition("Degraded", "True", "MissingRegion", "Region is not set"));

        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromMinutes(5), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryDegraded, error.Code);
        Assert.Contains("Degraded=True (MissingRegion): Region is not set", error.Message);
    }

    [Fact]
    public async Task A_healthy_registry_ends_the_wait_with_read_requests_only()
    {
        Seed(generation: 2, observed: 2, ready: 2, Healthy);

        await RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(5), CancellationToken.None);

        Assert.Empty(_cluster.Server.MutatingRequests);
    }
}
