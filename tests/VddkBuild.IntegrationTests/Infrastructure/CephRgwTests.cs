using System.Text;
using Amazon.S3.Model;
using VddkBuild.TestSupport.Infrastructure;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Infrastructure;

[Collection(CephRgw.CollectionName)]
public sealed class CephRgwTests(CephRgw ceph, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task Stores_and_lists_objects_through_the_S3_API()
    {
        ceph.Require();
        output.WriteLine($"Ceph RGW at {ceph.Endpoint} started in {ceph.StartTime.TotalSeconds:0.0} s");
        var bucket = CephRgw.UniqueBucketName("selftest");
        await ceph.CreateBucketAsync(bucket);

        using (var client = ceph.CreateClient())
        {
            await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = "docker/a/blob", ContentBody = "first" });
            await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = "docker/b/blob", ContentBody = "second!" });
            await client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = "other/c", ContentBody = "x" });
            using var read = await client.GetObjectAsync(bucket, "docker/b/blob");
            using var reader = new StreamReader(read.ResponseStream, Encoding.UTF8);
            Assert.Equal("second!", await reader.ReadToEndAsync());
        }

        var listed = await ceph.ListObjectsAsync(bucket, "docker/");
        Assert.Equal(["docker/a/blob", "docker/b/blob"], listed.Select(o => o.Key).Order(StringComparer.Ordinal));
        Assert.Equal([5L, 7L], listed.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => o.Size ?? -1));
    }

    [SkippableFact]
    public async Task Supports_the_multipart_upload_listing_the_registry_driver_needs()
    {
        // s3rver lacks ListMultipartUploads; the registry's S3 driver calls it on every chunked upload.
        ceph.Require();
        var bucket = CephRgw.UniqueBucketName("multipart");
        await ceph.CreateBucketAsync(bucket);
        using var client = ceph.CreateClient();
        var upload = await client.InitiateMultipartUploadAsync(bucket, "docker/upload");

        var listing = await client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest { BucketName = bucket, Prefix = "docker/" });

        Assert.Contains(listing.MultipartUploads ?? [], u => u.UploadId == upload.UploadId);
        await client.AbortMultipartUploadAsync(bucket, "docker/upload", upload.UploadId);
    }

    [SkippableFact]
    public async Task Rejects_requests_signed_with_a_wrong_secret()
    {
        ceph.Require();
        var config = new Amazon.S3.AmazonS3Config { ServiceURL = ceph.Endpoint, ForcePathStyle = true, UseHttp = true, AuthenticationRegion = ceph.Region, MaxErrorRetry = 0 };
        using var client = new Amazon.S3.AmazonS3Client(new Amazon.Runtime.BasicAWSCredentials(ceph.AccessKey, "not-the-secret"), config);

        var error = await Assert.ThrowsAsync<Amazon.S3.AmazonS3Exception>(() => client.ListBucketsAsync());

        Assert.Equal(System.Net.HttpStatusCode.Forbidden, error.StatusCode);
    }
}
