using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>Reads a claim's bucket in RGW directly (not through the route), with the claim's own keys: only its owner may.</summary>
internal static class ClusterBucket
{
    public static AmazonS3Client Client(CephRgw ceph, BucketFacts bucket) =>
        new(new BasicAWSCredentials(bucket.Credentials.AccessKeyId, bucket.Credentials.SecretAccessKey), new AmazonS3Config
        {
            ServiceURL = ceph.Endpoint,
            ForcePathStyle = true,
            UseHttp = true,
            AuthenticationRegion = ceph.Region,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });

    public static async Task<IReadOnlyList<S3Object>> ListAsync(AmazonS3Client client, string bucket, string prefix)
    {
        var objects = new List<S3Object>();
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix };
        ListObjectsV2Response response;
        do
        {
            response = await client.ListObjectsV2Async(request);
            objects.AddRange(response.S3Objects ?? []);
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
        return objects;
    }
}
