using System.Runtime.CompilerServices;
using Microsoft.Build.Framework;
using VddkBuild.Cluster;
using VddkBuild.Diagnostics;
using VddkBuild.Threading;

namespace VddkBuild.Tasks;

/// <summary>
/// Target PrepareVddkRegistry (and its per-step targets through <see cref="Steps"/>): the cluster's image registry on
/// a NooBaa bucket, exposed by its default route. Idempotent; with <see cref="DryRun"/> it prints every change and
/// writes nothing.
/// </summary>
public sealed class PrepareVddkRegistry : ClusterTask
{
    public string? DryRun { get; set; }

    /// <summary>Which steps (';'-separated: BucketClaim, VerifyBucket, Credentials, CaBundle, RegistryConfig, WaitForRollout); empty for all.</summary>
    public string? Steps { get; set; }

    public string? BucketClaim { get; set; }
    public string? BucketClaimNamespace { get; set; }
    public string? BucketName { get; set; }
    public string? BucketStorageClass { get; set; }
    public string? S3Endpoint { get; set; }
    public string? BucketClaimTimeout { get; set; }
    public string? RegistryReplicas { get; set; }
    public string? RegistryRolloutStrategy { get; set; }
    public string? ReplaceRegistryStorage { get; set; }
    public string? RegistryRolloutTimeout { get; set; }

    /// <summary>The bucket the registry uses (the claim's .spec.bucketName, which the provisioner may have generated).</summary>
    [Output] public string? BucketNameUsed { get; private set; }

    /// <summary>How many changes were applied (or, in a dry run, planned).</summary>
    [Output] public int ChangeCount { get; private set; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    protected override async Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        var dryRun = TaskProperties.Flag(DryRun, "VddkDryRun");
        var defaults = new BucketClaimOptions();
        var options = new RegistryPreparationOptions
        {
            Steps = RegistryPreparationStepNames.Parse(Steps),
            Bucket = defaults with
            {
                ClaimName = ClusterTaskProperties.NullIfBlank(BucketClaim) ?? defaults.ClaimName,
                Namespace = ClusterTaskProperties.NullIfBlank(BucketClaimNamespace) ?? defaults.Namespace,
                BucketName = ClusterTaskProperties.NullIfBlank(BucketName) ?? defaults.BucketName,
                StorageClass = ClusterTaskProperties.NullIfBlank(BucketStorageClass) ?? defaults.StorageClass,
                S3Endpoint = ClusterTaskProperties.S3Endpoint(S3Endpoint),
                BoundTimeout = ClusterTaskProperties.Duration(BucketClaimTimeout, "VddkBucketClaimTimeout", defaults.BoundTimeout),
            },
            Config = new RegistryConfigOptions
            {
                Replicas = ClusterTaskProperties.Replicas(RegistryReplicas),
                RolloutStrategy = ClusterTaskProperties.RolloutStrategy(RegistryRolloutStrategy),
                ReplaceStorage = TaskProperties.Flag(ReplaceRegistryStorage, "VddkReplaceRegistryStorage"),
            },
            RolloutTimeout = ClusterTaskProperties.Duration(RegistryRolloutTimeout, "VddkRegistryRolloutTimeout", new RegistryPreparationOptions().RolloutTimeout),
        };
        var (connection, session) = ClusterTaskProperties.Open(Kubeconfig, KubeContext, dryRun, PollInterval, log);
        using (connection)
        {
            var result = await RegistryPreparation.RunAsync(session, options, cancellationToken).ConfigureAwait(false);
            BucketNameUsed = result.Bucket?.BucketName ?? string.Empty;
            ChangeCount = result.Changes.Count;
            Announce(result.Changes.Count == 0
                ? "VddkBuild: the image registry was already prepared; nothing changed."
                : dryRun
                    ? $"VddkBuild: dry run, {result.Changes.Count} change(s) would be made (listed above); nothing was written."
                    : $"VddkBuild: image registry prepared on bucket \"{BucketNameUsed}\" ({result.Changes.Count} change(s)).");
        }
    }
}
