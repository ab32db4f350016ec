using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Step 6: waits until the registry really runs on the new config, judged by the registry's own signals. Available=True
/// alone is not enough (it is True while an old deployment still serves, and when Removed): the config's
/// <c>status.observedGeneration</c> must reach <c>metadata.generation</c>, <c>status.readyReplicas</c> must equal
/// <c>spec.replicas</c>, the config's own conditions must be Available=True, Progressing=False and not Degraded, and the
/// image-registry Deployment (when present) must have observed its generation with every replica updated and available.
/// The ClusterOperator is not the judge: it also turns Degraded for things that are not the registry (a failed image
/// pruner job keeps "ImagePrunerDegraded: Job has reached the specified backoff limit" for a day); such a Degraded is a
/// warning, any other fails at once, as does the config's own Degraded=True. A timeout quotes the conditions that
/// explain it (S3 problems show as Progressing=True with reason Error long before Degraded).
/// </summary>
public static class RegistryRolloutWaiter
{
    public static readonly ClusterObjectRef Operator = new(ClusterResource.ClusterOperators, null, "image-registry");

    public static readonly ClusterObjectRef Deployment = new(ClusterResource.Deployments, "openshift-image-registry", "image-registry");

    /// <summary>How long a registry pod may stay unschedulable or failing to start before the wait gives up on it.</summary>
    public static readonly TimeSpan DefaultStuckAfter = TimeSpan.FromMinutes(2);

    /// <param name="stuckAfter">
    /// A registry pod that stays unschedulable (PodScheduled=False, Unschedulable) or whose container keeps failing to
    /// start (ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError...) this long ends the wait with VDDK4024
    /// naming the pod and the reason, instead of a timeout minutes later. Short spells are tolerated: an autoscaler
    /// adding a node, a registry restarted once.
    /// </param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public static async Task WaitAsync(ClusterSession session, TimeSpan timeout, CancellationToken cancellationToken, TimeSpan? stuckAfter = null)
    {
        if (session.DryRun)
        {
            session.Log.Info("Dry run: not waiting for the image registry rollout.");
            return;
        }
        var started = session.Clock.GetUtcNow();
        string? lastProgress = null;
        string? warned = null;
        var stuckSince = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        while (true)
        {
            var config = await ClusterObjects.GetAsync(session, RegistryConfigStep.Config, cancellationToken).ConfigureAwait(false)
                ?? throw new VddkException(ErrorCodes.ClusterObjectNotFound, $"{RegistryConfigStep.Config} does not exist.", RegistryConfigStep.Config.ToString());
            var deployment = await ClusterObjects.GetAsync(session, Deployment, cancellationToken).ConfigureAwait(false);
            var clusterOperator = await ClusterObjects.GetAsync(session, Operator, cancellationToken).ConfigureAwait(false);
            var state = RolloutState.Read(config, deployment, clusterOperator);
            if (state.Observed && (state.ConfigCondition("Degraded") == "True" || (state.OperatorCondition("Degraded") == "True" && !state.OperatorDegradedElsewhere)))
            {
                throw new VddkException(ErrorCodes.RegistryDegraded,
                    $"The image registry operator reports Degraded: {state.Explain()}. Fix the cause it names (bucket, keys, CA bundle) and run the build again.", Operator.ToString());
            }
            if (state.OperatorCondition("Degraded") == "True" && state.OperatorDegradedElsewhere && warned != state.OperatorDegradedMessage)
            {
                warned = state.OperatorDegradedMessage;
                session.Log.Warn(ErrorCodes.RegistryOperatorDegradedElsewhere,
                    $"{Operator} reports Degraded for something other than the registry ({state.OperatorDegradedMessage}); the registry itself is judged by its config and deployment.");
            }
            if (state.Done)
            {
                session.Log.Info($"The image registry runs on the new configuration ({state.ReadyReplicas}/{state.Replicas} replicas ready).");
                return;
            }
            var now = session.Clock.GetUtcNow();
            var stuck = await ListStuckPodsAsync(session, deployment, cancellationToken).ConfigureAwait(false);
            foreach (var key in stuckSince.Keys.Except(stuck.Select(p => p.Key)).ToList())
            {
                stuckSince.Remove(key);
            }
            foreach (var pod in stuck)
            {
                var since = stuckSince.TryGetValue(pod.Key, out var first) ? first : stuckSince[pod.Key] = now;
                if (now - since >= (stuckAfter ?? DefaultStuckAfter))
                {
                    throw new VddkException(ErrorCodes.RegistryPodStuck,
                        $"The image registry cannot start: {pod.Description} for {(now - since).TotalSeconds:0} s. {pod.Advice} {state.Explain()}", pod.Name);
                }
            }
            var progress = state.Summary();
            if (progress != lastProgress)
            {
                session.Log.Info($"Waiting for the image registry: {progress}");
                lastProgress = progress;
            }
            var waited = session.Clock.GetUtcNow() - started;
            if (waited >= timeout)
            {
                throw new VddkException(ErrorCodes.RegistryRolloutTimeout,
                    $"The image registry did not finish its rollout in {waited.TotalSeconds:0} s ({progress}). {state.Explain()}", Operator.ToString());
            }
            await session.DelayAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private sealed record StuckPod(string Key, string Name, string Description, string Advice);

    /// <summary>
    /// The registry's pods (the Deployment's selector, else the operator's label docker-registry=default) that cannot
    /// make progress by themselves: unschedulable, or a container waiting in a failure state.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<IReadOnlyList<StuckPod>> ListStuckPodsAsync(ClusterSession session, JsonObject? deployment, CancellationToken cancellationToken)
    {
        var labels = deployment?["spec"]?["selector"]?["matchLabels"] as JsonObject;
        var selector = labels is { Count: > 0 }
            ? string.Join(",", labels.Select(l => $"{l.Key}={l.Value?.GetValue<string>()}"))
            : "docker-registry=default";
        var ns = Deployment.Namespace!;
        var target = new ClusterObjectRef(ClusterResource.Pods, ns, $"-l {selector}");
        V1PodList pods;
        try
        {
            pods = await ClusterErrors.CallAsync(session, "list", target,
                ct => session.Api.CoreV1.ListNamespacedPodAsync(ns, labelSelector: selector, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.ClusterForbidden)
        {
            // The pods only explain a slow rollout sooner; the rollout itself is judged without them.
            session.Log.Detail($"Not looking at the registry's pods: {ex.Message}");
            return [];
        }
        var stuck = new List<StuckPod>();
        var revision = deployment?["metadata"]?["annotations"]?[RevisionAnnotation]?.GetValue<string>();
        var revisions = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var pod in pods.Items.Where(p => p.Metadata.DeletionTimestamp is null))
        {
            if (!await OfCurrentRevisionAsync(session, pod, revision, revisions, cancellationToken).ConfigureAwait(false))
            {
                continue; // the old ReplicaSet's: the rollout replaces it, whatever state it is in
            }
            var name = $"pod \"{pod.Metadata.Name}\" in namespace \"{ns}\"";
            var scheduled = pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
            if (scheduled is { Status: "False", Reason: "Unschedulable" })
            {
                if (WaitsForANodeToReturn(scheduled.Message) || !await NoScaleUpForAsync(session, pod, cancellationToken).ConfigureAwait(false))
                {
                    continue; // a node is coming back or being added for it, which takes minutes; the rollout timeout still applies
                }
                stuck.Add(new StuckPod($"{pod.Metadata.Uid}/Unschedulable", pod.Metadata.Name, $"{name} cannot be scheduled ({scheduled.Message})",
                    "Free or add nodes that satisfy it; on a single-node or one-worker cluster set VddkRegistryReplicas=1 (for 2 replicas the operator requires them on different nodes)."));
                continue;
            }
            var statuses = (pod.Status?.InitContainerStatuses ?? []).Concat(pod.Status?.ContainerStatuses ?? []);
            foreach (var container in statuses)
            {
                var waiting = container.State?.Waiting;
                if (waiting?.Reason is not { } reason || !FailingReasons.Contains(reason))
                {
                    continue;
                }
                var last = container.LastState?.Terminated;
                var detail = string.Join("; ", new[]
                {
                    waiting.Message,
                    last is null ? null : $"last exit code {last.ExitCode}{(string.IsNullOrWhiteSpace(last.Message) ? "" : $": {last.Message.Trim()}")}",
                }.Where(d => !string.IsNullOrWhiteSpace(d)));
                stuck.Add(new StuckPod($"{pod.Metadata.Uid}/{container.Name}/{reason}", pod.Metadata.Name,
                    $"container \"{container.Name}\" of {name} is {reason}{(detail.Length == 0 ? "" : $" ({detail})")}",
                    reason.Contains("Image", StringComparison.Ordinal) || reason == "ErrImagePull"
                        ? "The node cannot pull the registry's image: check the cluster's pull secret and mirror configuration."
                        : "See the container's log (oc logs -n openshift-image-registry deployment/image-registry); a storage setting the registry rejects is the usual cause."));
            }
        }
        return stuck;
    }

    private const string RevisionAnnotation = "deployment.kubernetes.io/revision";

    /// <summary>
    /// Whether the pod belongs to the Deployment's current ReplicaSet (the one with the Deployment's revision). A pod
    /// of an older one (a registry that was failing before the new configuration, kept until new pods are available)
    /// says nothing about the rollout. A pod whose ReplicaSet cannot be read or is gone counts as old: a false VDDK4024
    /// would abort a healthy rollout, a missed one only waits for the timeout.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<bool> OfCurrentRevisionAsync(ClusterSession session, V1Pod pod, string? revision, Dictionary<string, string?> revisions, CancellationToken cancellationToken)
    {
        var owner = pod.Metadata.OwnerReferences?.FirstOrDefault(o => o.Kind == "ReplicaSet");
        if (revision is null || owner is null)
        {
            return true;
        }
        if (!revisions.TryGetValue(owner.Name, out var ownerRevision))
        {
            var ns = Deployment.Namespace!;
            var target = new ClusterObjectRef(ClusterResource.ReplicaSets, ns, owner.Name);
            try
            {
                var replicaSet = await ClusterErrors.GetOrNullAsync(session, target,
                    ct => session.Api.AppsV1.ReadNamespacedReplicaSetAsync(owner.Name, ns, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
                ownerRevision = replicaSet?.Metadata.Annotations?.TryGetValue(RevisionAnnotation, out var value) == true ? value : null;
            }
            catch (VddkException ex) when (ex.Code == ErrorCodes.ClusterForbidden)
            {
                session.Log.Detail($"Not judging pod \"{pod.Metadata.Name}\": {ex.Message}");
                ownerRevision = null;
            }
            revisions[owner.Name] = ownerRevision;
        }
        return ownerRevision == revision;
    }

    /// <summary>
    /// The scheduler counts a node that is cordoned (drained for an update: "node(s) were unschedulable", taint
    /// node.kubernetes.io/unschedulable) or rebooting (not-ready, unreachable): during a cluster upgrade nodes go and come
    /// back one by one, and on a small cluster the pod may have nowhere else to go for longer than the grace.
    /// </summary>
    private static bool WaitsForANodeToReturn(string? schedulerMessage) =>
        schedulerMessage is not null
        && (schedulerMessage.Contains("were unschedulable", StringComparison.Ordinal)
            || schedulerMessage.Contains("node.kubernetes.io/unschedulable", StringComparison.Ordinal)
            || schedulerMessage.Contains("node.kubernetes.io/not-ready", StringComparison.Ordinal)
            || schedulerMessage.Contains("node.kubernetes.io/unreachable", StringComparison.Ordinal));

    /// <summary>
    /// False when the cluster autoscaler has started adding a node for this unschedulable pod (event TriggeredScaleUp),
    /// or when the pod's events cannot be read to tell: a new machine takes several minutes to join.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<bool> NoScaleUpForAsync(ClusterSession session, V1Pod pod, CancellationToken cancellationToken)
    {
        var ns = Deployment.Namespace!;
        var selector = $"involvedObject.name={pod.Metadata.Name}";
        try
        {
            var events = await ClusterErrors.CallAsync(session, "list", new ClusterObjectRef(ClusterResource.Events, ns, selector),
                ct => session.Api.CoreV1.ListNamespacedEventAsync(ns, fieldSelector: selector, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            return !events.Items.Any(e => e.Reason == "TriggeredScaleUp" && (e.InvolvedObject?.Uid is null || e.InvolvedObject.Uid == pod.Metadata.Uid));
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.ClusterForbidden)
        {
            session.Log.Detail($"Not judging unschedulable pod \"{pod.Metadata.Name}\": {ex.Message}");
            return false;
        }
    }

    /// <summary>Waiting reasons kubelet reports for a container that keeps failing, not for one that is merely starting.</summary>
    private static readonly HashSet<string> FailingReasons = new(StringComparer.Ordinal)
    {
        "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull", "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
    };

    private sealed record RolloutState(long Generation, long ObservedGeneration, long Replicas, long ReadyReplicas, JsonObject? Deployment,
        JsonArray? ConfigConditions, JsonArray? OperatorConditions)
    {
        public static RolloutState Read(JsonObject config, JsonObject? deployment, JsonObject? clusterOperator) => new(
            ClusterObjects.Number(config, "metadata", "generation") ?? 0,
            ClusterObjects.Number(config, "status", "observedGeneration") ?? -1,
            ClusterObjects.Number(config, "spec", "replicas") ?? 1,
            ClusterObjects.Number(config, "status", "readyReplicas") ?? 0,
            deployment,
            config["status"]?["conditions"] as JsonArray,
            clusterOperator?["status"]?["conditions"] as JsonArray);

        public bool Observed => ObservedGeneration >= Generation;

        public bool Done => Observed && ReadyReplicas == Replicas && DeploymentRolledOut
            && ConfigCondition("Available") == "True" && ConfigCondition("Progressing") == "False" && ConfigCondition("Degraded") != "True";

        /// <summary>The Deployment's own rollout (absent: the config's readyReplicas stands for it).</summary>
        private bool DeploymentRolledOut => Deployment is null
            || ((ClusterObjects.Number(Deployment, "status", "observedGeneration") ?? -1) >= (ClusterObjects.Number(Deployment, "metadata", "generation") ?? 0)
                && DeploymentReplicas("updatedReplicas") == Replicas && DeploymentReplicas("readyReplicas") == Replicas
                && DeploymentReplicas("availableReplicas") == Replicas && (ClusterObjects.Number(Deployment, "status", "replicas") ?? 0) == Replicas);

        private long DeploymentReplicas(string field) => ClusterObjects.Number(Deployment, "status", field) ?? 0;

        public string? ConfigCondition(string type) => Find(ConfigConditions, type)?["status"]?.GetValue<string>();

        public string? OperatorCondition(string type) => Find(OperatorConditions, type)?["status"]?.GetValue<string>();

        public string OperatorDegradedMessage
        {
            get
            {
                var condition = Find(OperatorConditions, "Degraded");
                return $"{ClusterObjects.String(condition, "reason")}: {ClusterObjects.String(condition, "message")}";
            }
        }

        /// <summary>
        /// The ClusterOperator's Degraded message joins its controllers' ("ImagePrunerDegraded: Job has reached the
        /// specified backoff limit"); degraded only through the image pruner, it says nothing about the registry.
        /// </summary>
        public bool OperatorDegradedElsewhere
        {
            get
            {
                var condition = Find(OperatorConditions, "Degraded");
                var reason = ClusterObjects.String(condition, "reason") ?? "";
                var lines = (ClusterObjects.String(condition, "message") ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                return lines.Length > 0 ? lines.All(l => l.StartsWith("ImagePruner", StringComparison.Ordinal)) : reason.StartsWith("ImagePruner", StringComparison.Ordinal);
            }
        }

        public string Summary() =>
            $"observed generation {ObservedGeneration}/{Generation}, ready replicas {ReadyReplicas}/{Replicas}, " +
            (Deployment is null ? "" : $"deployment updated {DeploymentReplicas("updatedReplicas")}/{Replicas} available {DeploymentReplicas("availableReplicas")}/{Replicas}, ") +
            $"Available={ConfigCondition("Available") ?? "?"} Progressing={ConfigCondition("Progressing") ?? "?"} Degraded={ConfigCondition("Degraded") ?? "?"}";

        /// <summary>The conditions that say what is wrong, quoted with reason and message.</summary>
        public string Explain()
        {
            var problems = new List<string>();
            void Add(string owner, JsonArray? conditions, string type, string healthy)
            {
                var condition = Find(conditions, type);
                var status = condition?["status"]?.GetValue<string>();
                if (condition is null || status == healthy)
                {
                    return;
                }
                var text = $"{owner} {type}={status}";
                if (ClusterObjects.String(condition, "reason") is { Length: > 0 } reason) text += $" ({reason})";
                if (ClusterObjects.String(condition, "message") is { Length: > 0 } message) text += $": {message}";
                if (!problems.Any(p => p.EndsWith(text[text.IndexOf(' ')..], StringComparison.Ordinal))) problems.Add(text);
            }
            Add("ClusterOperator", OperatorConditions, "Degraded", "False");
            Add("ClusterOperator", OperatorConditions, "Progressing", "False");
            Add("ClusterOperator", OperatorConditions, "Available", "True");
            Add("Config", ConfigConditions, "Degraded", "False");
            Add("Config", ConfigConditions, "Progressing", "False");
            Add("Config", ConfigConditions, "Available", "True");
            Add("Config", ConfigConditions, "StorageExists", "True");
            return problems.Count == 0 ? "The operator reports no failing condition." : "Conditions: " + string.Join(" | ", problems);
        }

        private static JsonObject? Find(JsonArray? conditions, string type) =>
            conditions?.OfType<JsonObject>().FirstOrDefault(c => ClusterObjects.String(c, "type") == type);
    }
}
