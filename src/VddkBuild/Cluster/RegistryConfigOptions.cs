namespace VddkBuild.Cluster;

/// <summary>How the registry operator config is set (defaults: the documented procedure plus the route it forgets).</summary>
public sealed record RegistryConfigOptions
{
    /// <summary>
    /// VddkRegistryReplicas. Null (the default): keep the cluster's <c>spec.replicas</c>. Forcing 2 would hang a
    /// single-node or one-worker cluster: for exactly 2 replicas the operator adds a required pod anti-affinity, so the
    /// second pod never schedules.
    /// </summary>
    public int? Replicas { get; init; }

    /// <summary>S3 region written to the config; off AWS a region is still required, else the operator reports MissingRegion.</summary>
    public string Region { get; init; } = "us-east-1";

    /// <summary>
    /// Null: <c>Recreate</c> when the registry was already Managed and the config changes (as the procedure says),
    /// nothing otherwise. Set to force a strategy (RollingUpdate or Recreate).
    /// </summary>
    public string? RolloutStrategy { get; init; }

    /// <summary>
    /// VddkReplaceRegistryStorage: switch a registry whose storage already holds images (pvc, another bucket, gcs,
    /// azure...) to the bucket. Without it that is refused (VDDK4021); emptyDir, no storage and Removed never need it.
    /// </summary>
    public bool ReplaceStorage { get; init; }

    /// <summary>How many times to re-apply fields the operator dropped after the patch (it can lose user config in a race).</summary>
    public int ReapplyAttempts { get; init; } = 3;
}
