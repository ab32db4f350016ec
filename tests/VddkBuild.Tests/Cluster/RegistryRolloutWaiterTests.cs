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

    private static JsonArray Conditions(IEnumerable<JsonObject> conditions) => new(conditions.Select(c => (JsonNode)c.DeepClone()).ToArray());

    /// <summary>The config and the ClusterOperator report the same conditions, as when the registry itself is the cause.</summary>
    private void Seed(long generation, long observed, int ready, params JsonObject[] operatorConditions) =>
        Seed(generation, observed, ready, operatorConditions, operatorConditions);

    private void Seed(long generation, long observed, int ready, JsonObject[] configConditions, JsonObject[] operatorConditions)
    {
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", new JsonObject
        {
            ["spec"] = new JsonObject { ["managementState"] = "Managed", ["replicas"] = 2 },
            ["status"] = new JsonObject { ["observedGeneration"] = observed, ["readyReplicas"] = ready, ["conditions"] = Conditions(configConditions) },
        });
        for (var g = 1; g < generation; g++)
        {
            // Only spec changes bump metadata.generation, as on the real server.
            _cluster.Store.Update(KubeResources.ImageRegistryConfigs, null, "cluster", c => c["spec"]!["logLevel"] = $"Level{g}");
        }
        _cluster.Seed(KubeResources.ClusterOperators, null, "image-registry", new JsonObject
        {
            ["status"] = new JsonObject { ["conditions"] = Conditions(operatorConditions) },
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

        _cluster.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, "cluster", s => { s["observedGeneration"] = 3; s["readyReplicas"] = 2; s["conditions"] = Conditions(Healthy); });
        _cluster.Store.UpdateStatus(KubeResources.ClusterOperators, null, "image-registry", s => s["conditions"] = Conditions(Healthy));
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

    [Fact]
    public async Task A_cluster_operator_degraded_only_by_the_image_pruner_is_a_warning_not_a_failure()
    {
        const string pruner = "ImagePrunerDegraded: Job has reached the specified backoff limit";
        Seed(generation: 2, observed: 2, ready: 2, Healthy,
            [Condition("Available", "True"), Condition("Progressing", "False"), Condition("Degraded", "True", "ImagePrunerJobFailed", pruner)]);

        await RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(5), CancellationToken.None);

        var warning = Assert.Single(_cluster.Log.Warnings);
        Assert.Equal(ErrorCodes.RegistryOperatorDegradedElsewhere, warning.Code);
        Assert.Contains(pruner, warning.Message);
    }

    [Fact]
    public async Task The_registrys_own_degraded_condition_fails_even_when_the_cluster_operator_lags()
    {
        Seed(generation: 2, observed: 2, ready: 0,
            [Condition("Available", "False"), Condition("Progressing", "True", "Error", "Unable to apply resources"), Condition("Degraded", "True", "Unavailable", "The deployment does not have available replicas")],
            Healthy);

        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromMinutes(5), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryDegraded, error.Code);
        Assert.Contains("Config Degraded=True (Unavailable): The deployment does not have available replicas", error.Message);
    }

    [Fact]
    public async Task Waits_for_the_deployment_to_have_every_replica_updated_and_available()
    {
        Seed(generation: 2, observed: 2, ready: 2, Healthy);
        _cluster.Seed(KubeResources.Deployments, "openshift-image-registry", "image-registry", new JsonObject
        {
            ["spec"] = new JsonObject { ["replicas"] = 2 },
            ["status"] = new JsonObject { ["observedGeneration"] = 1, ["replicas"] = 3, ["updatedReplicas"] = 1, ["readyReplicas"] = 2, ["availableReplicas"] = 2 },
        });
        var waiting = RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(20), CancellationToken.None);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);

        _cluster.Store.UpdateStatus(KubeResources.Deployments, "openshift-image-registry", "image-registry", s => { s["replicas"] = 2; s["updatedReplicas"] = 2; });
        await waiting;

        Assert.Contains(_cluster.Log.Lines, l => l.Contains("deployment updated 1/2 available 2/2"));
    }

    /// <summary>A registry pod as the API server shows it: the operator's label, scheduling and container state in status.</summary>
    private void SeedRegistryPod(string name, JsonObject status, string templateHash = "7d9c8b6f5") =>
        _cluster.Seed(KubeResources.Pods, "openshift-image-registry", name, new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["labels"] = new JsonObject { ["docker-registry"] = "default", ["pod-template-hash"] = templateHash },
                ["ownerReferences"] = new JsonArray(new JsonObject
                {
                    ["apiVersion"] = "apps/v1", ["kind"] = "ReplicaSet", ["name"] = $"image-registry-{templateHash}", ["uid"] = Guid.NewGuid().ToString(), ["controller"] = true,
                }),
            },
            ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "registry", ["image"] = "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:0" }) },
            ["status"] = status,
        });

    private void SeedRollingOut() =>
        Seed(generation: 2, observed: 2, ready: 1, Condition("Available", "True"), Condition("Progressing", "True", "Progressing", "The deployment has not completed"), Condition("Degraded", "False"));

    [Fact]
    public async Task A_registry_pod_that_cannot_be_scheduled_ends_the_wait_early_naming_the_scheduler_message()
    {
        SeedRollingOut();
        SeedRegistryPod("image-registry-7d9c8b6f5-x2x4q", JsonNode.Parse("""
            {"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable",
              "message":"0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."}],
             "qosClass":"Burstable"}
            """)!.AsObject());

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(30), CancellationToken.None, stuckAfter: TimeSpan.FromMilliseconds(300)));

        Assert.Equal(ErrorCodes.RegistryPodStuck, error.Code);
        Assert.Contains("pod \"image-registry-7d9c8b6f5-x2x4q\" in namespace \"openshift-image-registry\" cannot be scheduled", error.Message);
        Assert.Contains("didn't match pod anti-affinity rules", error.Message);
        Assert.Contains("VddkRegistryReplicas=1", error.Message);
    }

    [Fact]
    public async Task A_registry_container_in_CrashLoopBackOff_ends_the_wait_early_quoting_its_last_exit()
    {
        SeedRollingOut();
        SeedRegistryPod("image-registry-7d9c8b6f5-k8s2d", JsonNode.Parse("""
            {"phase":"Running","conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"False","reason":"ContainersNotReady"}],
             "containerStatuses":[{"name":"registry","ready":false,"restartCount":4,"image":"quay.io/x","imageID":"",
               "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 1m20s restarting failed container=registry pod=image-registry-7d9c8b6f5-k8s2d_openshift-image-registry"}},
               "lastState":{"terminated":{"exitCode":2,"reason":"Error","message":"panic: s3aws: x509: certificate signed by unknown authority"}}}]}
            """)!.AsObject());

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(30), CancellationToken.None, stuckAfter: TimeSpan.FromMilliseconds(300)));

        Assert.Equal(ErrorCodes.RegistryPodStuck, error.Code);
        Assert.Contains("container \"registry\" of pod \"image-registry-7d9c8b6f5-k8s2d\" in namespace \"openshift-image-registry\" is CrashLoopBackOff", error.Message);
        Assert.Contains("last exit code 2: panic: s3aws: x509: certificate signed by unknown authority", error.Message);
    }

    /// <summary>The registry Deployment at <paramref name="revision"/> mid-rollout, with a ReplicaSet per revision.</summary>
    private void SeedDeploymentRevisions(int revision, params (string Hash, int Revision)[] replicaSets)
    {
        _cluster.Seed(KubeResources.Deployments, "openshift-image-registry", "image-registry", new JsonObject
        {
            ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { ["deployment.kubernetes.io/revision"] = $"{revision}" } },
            ["spec"] = new JsonObject { ["replicas"] = 2, ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["docker-registry"] = "default" } } },
            ["status"] = new JsonObject { ["observedGeneration"] = 1, ["replicas"] = 3, ["updatedReplicas"] = 1, ["readyReplicas"] = 1, ["availableReplicas"] = 1 },
        });
        foreach (var (hash, replicaSetRevision) in replicaSets)
        {
            _cluster.Seed(KubeResources.ReplicaSets, "openshift-image-registry", $"image-registry-{hash}", new JsonObject
            {
                ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { ["deployment.kubernetes.io/revision"] = $"{replicaSetRevision}" } },
            });
        }
    }

    private static JsonObject CrashLooping(string pod) => JsonNode.Parse("""
        {"phase":"Running","conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"False","reason":"ContainersNotReady"}],
         "containerStatuses":[{"name":"registry","ready":false,"restartCount":40,"image":"quay.io/x","imageID":"",
           "state":{"waiting":{"reason":"CrashLoopBackOff","message":"back-off 5m0s restarting failed container=registry pod=POD_openshift-image-registry"}},
           "lastState":{"terminated":{"exitCode":1,"reason":"Error","message":"panic: Invalid s3 bucket"}}}]}
        """.Replace("POD", pod, StringComparison.Ordinal))!.AsObject();

    private void CompleteRollout()
    {
        _cluster.Store.UpdateStatus(KubeResources.Deployments, "openshift-image-registry", "image-registry", s =>
        {
            s["replicas"] = 2;
            s["updatedReplicas"] = 2;
            s["readyReplicas"] = 2;
            s["availableReplicas"] = 2;
        });
        _cluster.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, "cluster", s => { s["readyReplicas"] = 2; s["conditions"] = Conditions(Healthy); });
        _cluster.Store.UpdateStatus(KubeResources.ClusterOperators, null, "image-registry", s => s["conditions"] = Conditions(Healthy));
    }

    [Fact]
    public async Task A_crash_looping_pod_of_the_old_replica_set_does_not_end_a_rollout_that_replaces_it()
    {
        // The registry was failing on its old storage (the reason for preparing it); the new pods are still starting.
        SeedRollingOut();
        SeedDeploymentRevisions(4, ("5c6b7d8e9", 3), ("7d9c8b6f5", 4));
        SeedRegistryPod("image-registry-5c6b7d8e9-old01", CrashLooping("image-registry-5c6b7d8e9-old01"), templateHash: "5c6b7d8e9");
        var waiting = RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(30), CancellationToken.None, stuckAfter: TimeSpan.FromMilliseconds(200));
        await Task.Delay(1500);
        Assert.False(waiting.IsCompleted, waiting.Exception?.InnerException?.Message);

        CompleteRollout();
        await waiting;
    }

    [Fact]
    public async Task A_crash_looping_pod_of_the_current_replica_set_still_ends_the_wait_early()
    {
        SeedRollingOut();
        SeedDeploymentRevisions(4, ("5c6b7d8e9", 3), ("7d9c8b6f5", 4));
        SeedRegistryPod("image-registry-7d9c8b6f5-new01", CrashLooping("image-registry-7d9c8b6f5-new01"));

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(30), CancellationToken.None, stuckAfter: TimeSpan.FromMilliseconds(200)));

        Assert.Equal(ErrorCodes.RegistryPodStuck, error.Code);
        Assert.Contains("image-registry-7d9c8b6f5-new01", error.Message);
    }

    [Theory]
    [InlineData("0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")]
    [InlineData("0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 2 node(s) didn't match pod anti-affinity rules.")]
    public async Task A_pod_unschedulable_while_a_node_is_drained_or_rebooting_for_an_upgrade_does_not_end_the_wait(string schedulerMessage)
    {
        SeedRollingOut();
        var pod = "image-registry-7d9c8b6f5-drain";
        var status = JsonNode.Parse("""{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable"}]}""")!.AsObject();
        status["conditions"]![0]!["message"] = schedulerMessage;
        SeedRegistryPod(pod, status);
        var waiting = RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(30), CancellationToken.None, stuckAfter: TimeSpan.FromMilliseconds(200));
        await Task.Delay(1500);
        Assert.False(waiting.IsCompleted, waiting.Exception?.InnerException?.Message);

        _cluster.Store.UpdateStatus(KubeResources.Pods, "openshift-image-registry", pod, s =>
        {
            s["phase"] = "Running";
            s["conditions"] = new JsonArray(new JsonObject { ["type"] = "PodScheduled", ["status"] = "True" });
        });
        _cluster.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, "cluster", s => { s["readyReplicas"] = 2; s["conditions"] = Conditions(Healthy); });
        _cluster.Store.UpdateStatus(KubeResources.ClusterOperators, null, "image-registry", s => s["conditions"] = Conditions(Healthy));
        await waiting;
    }

    [Fact]
    public async Task An_unschedulable_pod_for_which_the_autoscaler_adds_a_node_does_not_end_the_wait()
    {
        SeedRollingOut();
        var pod = "image-registry-7d9c8b6f5-scale";
        SeedRegistryPod(pod, JsonNode.Parse("""
            {"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes are available: 3 Insufficient cpu."}]}
            """)!.AsObject());
        var uid = _cluster.Store.Get(KubeResources.Pods, "openshift-image-registry", pod)!["metadata"]!["uid"]!.GetValue<string>();
        _cluster.Seed(KubeResources.Events, "openshift-image-registry", $"{pod}.17a2b3c4d5e6f708", new JsonObject
        {
            ["involvedObject"] = new JsonObject { ["kind"] = "Pod", ["namespace"] = "openshift-image-registry", ["name"] = pod, ["uid"] = uid },
            ["reason"] = "TriggeredScaleUp",
            ["message"] = "pod triggered scale-up: [{openshift-machine-api/ocp-worker-us-east-1a 2->3 (max: 6)}]",
            ["type"] = "Normal",
            ["source"] = new JsonObject { ["component"] = "cluster-autoscaler" },
        });
        var waiting = RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(30), CancellationToken.None, stuckAfter: TimeSpan.FromMilliseconds(200));
        await Task.Delay(1500);
        Assert.False(waiting.IsCompleted, waiting.Exception?.InnerException?.Message);

        _cluster.Store.UpdateStatus(KubeResources.Pods, "openshift-image-registry", pod, s =>
        {
            s["phase"] = "Running";
            s["conditions"] = new JsonArray(new JsonObject { ["type"] = "PodScheduled", ["status"] = "True" });
        });
        _cluster.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, "cluster", s => { s["readyReplicas"] = 2; s["conditions"] = Conditions(Healthy); });
        _cluster.Store.UpdateStatus(KubeResources.ClusterOperators, null, "image-registry", s => s["conditions"] = Conditions(Healthy));
        await waiting;
    }

    [Fact]
    public async Task A_pod_that_recovers_within_the_grace_does_not_end_the_wait()
    {
        SeedRollingOut();
        SeedRegistryPod("image-registry-7d9c8b6f5-a1b2c", JsonNode.Parse("""
            {"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/3 nodes are available: 3 Insufficient cpu."}]}
            """)!.AsObject());
        var waiting = RegistryRolloutWaiter.WaitAsync(_cluster.Session(), TimeSpan.FromSeconds(30), CancellationToken.None, stuckAfter: TimeSpan.FromSeconds(5));
        await Task.Delay(300);

        // An autoscaler added a node: the pod is scheduled and the rollout completes.
        _cluster.Store.UpdateStatus(KubeResources.Pods, "openshift-image-registry", "image-registry-7d9c8b6f5-a1b2c", s =>
        {
            s["phase"] = "Running";
            s["conditions"] = new JsonArray(new JsonObject { ["type"] = "PodScheduled", ["status"] = "True" });
        });
        _cluster.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, "cluster", s => { s["readyReplicas"] = 2; s["conditions"] = Conditions(Healthy); });
        _cluster.Store.UpdateStatus(KubeResources.ClusterOperators, null, "image-registry", s => s["conditions"] = Conditions(Healthy));
        await waiting;
    }
}
