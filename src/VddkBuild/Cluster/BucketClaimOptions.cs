namespace VddkBuild.Cluster;

/// <summary>The ObjectBucketClaim of the registry's bucket and where to find its S3 endpoint (defaults: the documented procedure).</summary>
public sealed record BucketClaimOptions
{
    /// <summary>VddkBucketClaim.</summary>
    public string ClaimName { get; init; } = "openshift-image-registry";

    public string Namespace { get; init; } = "openshift-image-registry";

    /// <summary>VddkBucketName: the bucket requested (NooBaa bucket names are global across the cluster).</summary>
    public string BucketName { get; init; } = "image-registry-bucket";

    /// <summary>VddkBucketStorageClass.</summary>
    public string StorageClass { get; init; } = "openshift-storage.noobaa.io";

    /// <summary>How long to wait for the claim to be Bound.</summary>
    public TimeSpan BoundTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>VddkS3Endpoint: overrides the route lookup (https://host[:port]).</summary>
    public Uri? S3Endpoint { get; init; }

    public string S3RouteNamespace { get; init; } = "openshift-storage";

    public string S3RouteName { get; init; } = "s3";
}
