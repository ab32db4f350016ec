namespace VddkBuild.Cluster;

/// <summary>What PrepareVddkRegistry does (defaults: every step of the documented procedure, with its gaps closed).</summary>
public sealed record RegistryPreparationOptions
{
    public BucketClaimOptions Bucket { get; init; } = new();

    public RegistryConfigOptions Config { get; init; } = new();

    /// <summary>How long to wait for the registry rollout (VddkRegistryRolloutTimeout).</summary>
    public TimeSpan RolloutTimeout { get; init; } = TimeSpan.FromMinutes(10);

    public RegistryPreparationSteps Steps { get; init; } = RegistryPreparationSteps.All;
}

/// <summary>What the preparation found and did.</summary>
/// <param name="Bucket">The bucket facts, when a step needed them (keys redacted in every printout).</param>
/// <param name="Changes">Every change applied (or, in a dry run, planned).</param>
public sealed record RegistryPreparationResult(BucketFacts? Bucket, IngressCa? IngressCa, bool ConfigChanged, IReadOnlyList<ClusterChange> Changes);
