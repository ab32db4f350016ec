namespace VddkBuild.Cluster;

/// <summary>How the registry operator config is set (defaults: the documented procedure plus the route it forgets).</summary>
public sealed record RegistryConfigOptions
{
    /// <summary>VddkRegistryReplicas.</summary>
    public int Replicas { get; init; } = 2;

    /// <summary>S3 region written to the config; off AWS a region is still required, else the operator reports MissingRegion.</summary>
    public string Region { get; init; } = "us-east-1";

    /// <summary>
    /// Null: <c>Recreate</c> when the registry was already Managed and the config changes (as the procedure says),
    /// nothing otherwise. Set to force a strategy (RollingUpdate or Recreate).
    /// </summary>
    public string? RolloutStrategy { get; init; }

    /// <summary>How many times to re-apply fields the operator dropped after the patch (it can lose user config in a race).</summary>
    public int ReapplyAttempts { get; init; } = 3;
}
