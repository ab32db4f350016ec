namespace VddkBuild.Cluster;

/// <summary>S3 keys of a bucket. Never printed: <see cref="ToString"/> redacts them.</summary>
public sealed class BucketCredentials(string accessKeyId, string secretAccessKey)
{
    public string AccessKeyId { get; } = accessKeyId;

    public string SecretAccessKey { get; } = secretAccessKey;

    public override string ToString() => ClusterChange.Redacted;
}

/// <summary>
/// Everything the registry needs about its bucket, as the bucket claim's provisioner published it.
/// <see cref="Planned"/> marks the placeholder a dry run returns before the claim exists (keys then empty).
/// </summary>
/// <param name="BucketName">From the claim's <c>.spec.bucketName</c> (the provisioner may have generated it).</param>
/// <param name="Endpoint">The external S3 URL (the <c>s3</c> route, or VddkS3Endpoint).</param>
/// <param name="Region">The claim's BUCKET_REGION, else us-east-1 (off AWS a region is still required).</param>
/// <param name="InternalHost">BUCKET_HOST: the in-cluster S3 service, for information.</param>
public sealed record BucketFacts(string BucketName, Uri Endpoint, string Region, string? InternalHost, int? InternalPort, BucketCredentials Credentials, bool Planned = false);
