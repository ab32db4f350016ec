namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// The registry's effective settings as the operator renders them into the deployment (env REGISTRY_STORAGE_S3_*,
/// the CA bundle, replicas). The simulated operator restarts docker-registry only when these change, as a real
/// deployment rolls out only when its pod template changes. Secrets are never printed.
/// </summary>
public sealed record RegistryDeploymentSettings(
    string Bucket,
    string Region,
    string RegionEndpoint,
    string AccessKey,
    string SecretKey,
    string CaBundlePem,
    bool ForcePathStyle,
    bool Encrypt,
    long Replicas)
{
    /// <summary>The environment the operator gives the registry container (the workplace's AWS_CA_BUNDLE is never passed on).</summary>
    public IReadOnlyDictionary<string, string> Environment(string caBundlePath) => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["REGISTRY_STORAGE"] = "s3",
        ["REGISTRY_STORAGE_S3_BUCKET"] = Bucket,
        ["REGISTRY_STORAGE_S3_REGION"] = Region,
        ["REGISTRY_STORAGE_S3_REGIONENDPOINT"] = RegionEndpoint,
        ["REGISTRY_STORAGE_S3_ACCESSKEY"] = AccessKey,
        ["REGISTRY_STORAGE_S3_SECRETKEY"] = SecretKey,
        ["REGISTRY_STORAGE_S3_ENCRYPT"] = Encrypt ? "true" : "false",
        ["REGISTRY_STORAGE_S3_FORCEPATHSTYLE"] = ForcePathStyle ? "true" : "false",
        ["REGISTRY_STORAGE_S3_SECURE"] = RegionEndpoint.StartsWith("https:", StringComparison.OrdinalIgnoreCase) ? "true" : "false",
        ["REGISTRY_STORAGE_S3_V4AUTH"] = "true",
        ["REGISTRY_STORAGE_DELETE_ENABLED"] = "true",
        // The operator mounts trustedCA as the pod's only extra trust; Go reads SSL_CERT_FILE.
        ["SSL_CERT_FILE"] = caBundlePath,
    };

    public override string ToString() => $"s3 bucket {Bucket} at {RegionEndpoint} (region {Region}), {Replicas} replicas, keys hidden";
}
