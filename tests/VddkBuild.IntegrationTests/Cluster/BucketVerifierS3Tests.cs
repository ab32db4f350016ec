using System.Security.Cryptography.X509Certificates;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes.Simulators;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>The bucket check against real S3 implementations, through a TLS route signed by an ingress CA.</summary>
[Collection(CephRgw.CollectionName)]
public sealed class BucketVerifierS3Tests(CephRgw ceph, ITestOutputHelper output)
{
    private static X509Certificate2Collection Trust(SimulatedIngress ingress)
    {
        var trusted = new X509Certificate2Collection();
        trusted.ImportFromPem(ingress.CaPem);
        return trusted;
    }

    [SkippableFact]
    public async Task Ceph_RGW_passes_every_check_through_the_route_and_keeps_no_probe()
    {
        ceph.Require();
        using var ingress = SimulatedIngress.Create();
        await using var route = TlsTerminatingRoute.Start(ingress.IssueRouteCertificate(), new Uri(ceph.Endpoint));
        var bucket = CephRgw.UniqueBucketName("verify");
        await ceph.CreateBucketAsync(bucket);
        var log = new RecordingBuildLog(output.WriteLine);

        await BucketVerifier.VerifyAsync(new BucketFacts(bucket, route.BaseUri, "us-east-1", null, null, new BucketCredentials(ceph.AccessKey, ceph.SecretKey)),
            Trust(ingress), log, CancellationToken.None);

        Assert.Contains("passed the S3 checks", log.AllText);
        Assert.Empty(await ceph.ListObjectsAsync(bucket));
        using var client = ceph.CreateClient();
        Assert.Empty((await client.ListMultipartUploadsAsync(bucket)).MultipartUploads ?? []);
    }

    [SkippableFact]
    public async Task S3rver_without_ListMultipartUploads_is_refused_naming_the_operation()
    {
        Requires.Tool("s3rver");
        using var ingress = SimulatedIngress.Create();
        await using var s3rver = await S3rverProcess.StartAsync("registry");
        await using var route = TlsTerminatingRoute.Start(ingress.IssueRouteCertificate(), s3rver.Endpoint);
        var log = new RecordingBuildLog(output.WriteLine);

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketVerifier.VerifyAsync(
            new BucketFacts("registry", route.BaseUri, "us-east-1", null, null, new BucketCredentials(S3rverProcess.AccessKey, S3rverProcess.SecretKey)),
            Trust(ingress), log, CancellationToken.None));

        Assert.Equal(ErrorCodes.BucketVerificationFailed, error.Code);
        Assert.Contains("S3 ListMultipartUploads on bucket \"registry\"", error.Message);
        output.WriteLine(error.Message);
    }

    [SkippableFact]
    public async Task A_route_certificate_from_another_CA_fails_the_check_as_a_TLS_problem()
    {
        ceph.Require();
        using var ingress = SimulatedIngress.Create();
        using var other = SimulatedIngress.Create();
        await using var route = TlsTerminatingRoute.Start(other.IssueRouteCertificate(), new Uri(ceph.Endpoint));
        var bucket = CephRgw.UniqueBucketName("verify");
        await ceph.CreateBucketAsync(bucket);

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketVerifier.VerifyAsync(
            new BucketFacts(bucket, route.BaseUri, "us-east-1", null, null, new BucketCredentials(ceph.AccessKey, ceph.SecretKey)),
            Trust(ingress), new RecordingBuildLog(), CancellationToken.None));

        Assert.Equal(ErrorCodes.BucketVerificationFailed, error.Code);
        Assert.Contains("HeadBucket", error.Message);
        Assert.Contains("trusted neither by the system trust store nor by the ingress CA bundle", error.Message);
    }
}
