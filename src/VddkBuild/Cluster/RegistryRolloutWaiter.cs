using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Step 6: waits until the registry really runs on the new config. <c>Available=True</c> alone is not enough (it is
/// True while an old deployment still serves, and when Removed): the config's <c>status.observedGeneration</c> must
/// reach <c>metadata.generation</c>, <c>status.readyReplicas</c> must equal <c>spec.replicas</c>, and ClusterOperator
/// image-registry must be Available=True, Progressing=False, Degraded=False. Degraded=True fails at once; a timeout
/// quotes the conditions that explain it (S3 problems show as Progressing=True with reason Error long before Degraded).
/// </summary>
public static class RegistryRolloutWaiter
{
    public static readonly ClusterObjectRef Operator = new(ClusterResource.ClusterOperators, null, "image-registry");

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public static async Task WaitAsync(ClusterSession session, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (session.DryRun)
        {
            session.Log.Info("Dry run: not waiting for the image registry rollout.");
            return;
        }
        var started = session.Clock.GetUtcNow();
        string? lastProgress = null;
        while (true)
        {
            var config = await ClusterObjects.GetAsync(session, RegistryConfigStep.Config, cancellationToken).ConfigureAwait(false)
                ?? throw new VddkException(ErrorCodes.ClusterObjectNotFound, $"{RegistryConfigStep.Config} does not exist.", RegistryConfigStep.Config.ToString());
            var clusterOperator = await ClusterObjects.GetAsync(session, Operator, cancellationToken).ConfigureAwait(false);
            var state = RolloutState.Read(config, clusterOperator);
            if (state.Done)
            {
                session.Log.Info($"The image registry runs on the new configuration ({state.ReadyReplicas}/{state.Replicas} replicas ready).");
                return;
            }
            if (state.Observed && state.OperatorCondition("Degraded") == "True")
            {
                throw new VddkException(ErrorCodes.RegistryDegraded,
                    $"The image registry operator reports Degraded: {state.Explain()}. Fix the cause it names (bucket, keys, CA bundle) and run the build again.", Operator.ToString());
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

    private sealed record RolloutState(long Generation, long ObservedGeneration, long Replicas, long ReadyReplicas, JsonArray? ConfigConditions, JsonArray? OperatorConditions)
    {
        public static RolloutState Read(JsonObject config, JsonObject? clusterOperator) => new(
            ClusterObjects.Number(config, "metadata", "generation") ?? 0,
            ClusterObjects.Number(config, "status", "observedGeneration") ?? -1,
            ClusterObjects.Number(config, "spec", "replicas") ?? 1,
            ClusterObjects.Number(config, "status", "readyReplicas") ?? 0,
            config["status"]?["conditions"] as JsonArray,
            clusterOperator?["status"]?["conditions"] as JsonArray);

        public bool Observed => ObservedGeneration >= Generation;

        public bool Done => Observed && ReadyReplicas == Replicas
            && OperatorCondition("Available") == "True" && OperatorCondition("Progressing") == "False" && OperatorCondition("Degraded") == "False";

        public string? OperatorCondition(string type) => Find(OperatorConditions, type)?["status"]?.GetValue<string>();

        public string Summary() =>
            $"observed generation {ObservedGeneration}/{Generation}, ready replicas {ReadyReplicas}/{Replicas}, " +
            $"Available={OperatorCondition("Available") ?? "?"} Progressing={OperatorCondition("Progressing") ?? "?"} Degraded={OperatorCondition("Degraded") ?? "?"}";

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
