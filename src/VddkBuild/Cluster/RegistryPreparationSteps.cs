namespace VddkBuild.Cluster;

/// <summary>The steps of PrepareVddkRegistry, in the order they run.</summary>
[Flags]
public enum RegistryPreparationSteps
{
    None = 0,

    /// <summary>1: ObjectBucketClaim created or adopted, waited for until Bound; bucket facts read.</summary>
    BucketClaim = 1,

    /// <summary>2: the bucket proven usable by the registry's S3 driver (including ListMultipartUploads).</summary>
    VerifyBucket = 2,

    /// <summary>3: Secret image-registry-private-configuration-user with the bucket's keys.</summary>
    Credentials = 4,

    /// <summary>4: ConfigMap image-registry-s3-bundle in openshift-config with the ingress CA.</summary>
    CaBundle = 8,

    /// <summary>5: the registry operator config on the S3 bucket, with the default route.</summary>
    RegistryConfig = 16,

    /// <summary>6: wait for the operator to roll the registry out on the new config.</summary>
    WaitForRollout = 32,

    All = BucketClaim | VerifyBucket | Credentials | CaBundle | RegistryConfig | WaitForRollout,
}

public static class RegistryPreparationStepNames
{
    /// <summary>
    /// Parses a ';' or ','-separated list of step names (case-insensitive; <c>All</c>, or empty, for every step).
    /// </summary>
    public static RegistryPreparationSteps Parse(string? value, string propertyName = "VddkRegistrySteps")
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return RegistryPreparationSteps.All;
        }
        var steps = RegistryPreparationSteps.None;
        foreach (var name in value.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Enum.TryParse<RegistryPreparationSteps>(name, ignoreCase: true, out var step) || !Enum.IsDefined(step) || step == RegistryPreparationSteps.None)
            {
                throw new VddkException(ErrorCodes.PropertyInvalid,
                    $"{propertyName} contains '{name}', which is not a step. Use any of: {string.Join(", ", Enum.GetNames<RegistryPreparationSteps>().Where(n => n != nameof(RegistryPreparationSteps.None)))}.",
                    propertyName);
            }
            steps |= step;
        }
        return steps;
    }
}
