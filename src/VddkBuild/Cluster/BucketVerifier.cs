using System.Net;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using VddkBuild.Diagnostics;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Step 2: proves the bucket works the way the registry's S3 driver uses it before the registry depends on it, through
/// the external endpoint, path style, trusting the given CA: head the bucket; write, read back and delete a probe
/// object; create, list and abort a multipart upload (the driver lists multipart uploads on every chunked push, and
/// an S3 without ListMultipartUploads breaks every push). A failure names the operation that failed.
/// </summary>
public static class BucketVerifier
{
    private const string ProbePrefix = "vddkbuild-probe/";

    /// <param name="trustedCertificates">The ingress CA bundle; null: the system trust store.</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public static async Task VerifyAsync(BucketFacts bucket, X509Certificate2Collection? trustedCertificates, IBuildLog log, CancellationToken cancellationToken)
    {
        if (bucket.Planned)
        {
            log.Info($"Dry run: the bucket \"{bucket.BucketName}\" is not verified (it does not exist yet).");
            return;
        }
        using var client = CreateClient(bucket, trustedCertificates);
        var probeKey = $"{ProbePrefix}{Guid.NewGuid():N}";
        var payload = RandomNumberGenerator.GetBytes(4096);

        await RunAsync(bucket, "HeadBucket", () => client.HeadBucketAsync(new HeadBucketRequest { BucketName = bucket.BucketName }, cancellationToken)).ConfigureAwait(false);
        await RunAsync(bucket, "PutObject", () => client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = bucket.BucketName,
            Key = probeKey,
            InputStream = new MemoryStream(payload),
            UseChunkEncoding = false,
        }, cancellationToken)).ConfigureAwait(false);
        try
        {
            await RunAsync(bucket, "GetObject", [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<GetObjectResponse> () =>
            {
                using var response = await client.GetObjectAsync(bucket.BucketName, probeKey, cancellationToken).ConfigureAwait(false);
                using var read = new MemoryStream();
                await response.ResponseStream.CopyToAsync(read, cancellationToken).ConfigureAwait(false);
                if (!read.ToArray().AsSpan().SequenceEqual(payload))
                {
                    throw new VddkException(ErrorCodes.BucketVerificationFailed,
                        $"S3 GetObject on bucket \"{bucket.BucketName}\" at {bucket.Endpoint} returned other bytes than were written. The S3 endpoint is not usable for the registry.",
                        bucket.Endpoint.ToString());
                }
                return response;
            }).ConfigureAwait(false);
        }
        finally
        {
            await RunAsync(bucket, "DeleteObject", () => client.DeleteObjectAsync(bucket.BucketName, probeKey, CancellationToken.None)).ConfigureAwait(false);
        }

        var upload = await RunAsync(bucket, "CreateMultipartUpload", () => client.InitiateMultipartUploadAsync(
            new InitiateMultipartUploadRequest { BucketName = bucket.BucketName, Key = probeKey + "-multipart" }, cancellationToken)).ConfigureAwait(false);
        VddkException? listFailure = null;
        try
        {
            var uploads = await RunAsync(bucket, "ListMultipartUploads", () => client.ListMultipartUploadsAsync(
                new ListMultipartUploadsRequest { BucketName = bucket.BucketName, Prefix = ProbePrefix }, cancellationToken)).ConfigureAwait(false);
            if (uploads.MultipartUploads?.Any(u => u.UploadId == upload.UploadId) != true)
            {
                throw new VddkException(ErrorCodes.BucketVerificationFailed,
                    $"S3 ListMultipartUploads on bucket \"{bucket.BucketName}\" at {bucket.Endpoint} did not list the upload just created; " +
                    "the registry's S3 driver relies on it to resume chunked uploads. Use an S3 service that implements ListMultipartUploads (NooBaa, Ceph RGW).",
                    bucket.Endpoint.ToString());
            }
        }
        catch (VddkException ex)
        {
            listFailure = ex;
            throw;
        }
        finally
        {
            try
            {
                await RunAsync(bucket, "AbortMultipartUpload", () => client.AbortMultipartUploadAsync(
                    new AbortMultipartUploadRequest { BucketName = bucket.BucketName, Key = probeKey + "-multipart", UploadId = upload.UploadId }, CancellationToken.None)).ConfigureAwait(false);
            }
            catch (VddkException abortFailure) when (listFailure is not null)
            {
                // The listing failure is the one to report; an S3 without it often lacks abort too.
                log.Detail($"Cleaning up the probe upload also failed: {abortFailure.Message}");
            }
        }
        log.Info($"Bucket \"{bucket.BucketName}\" at {bucket.Endpoint} passed the S3 checks (head, put/get/delete, multipart create/list/abort).");
    }

    private static AmazonS3Client CreateClient(BucketFacts bucket, X509Certificate2Collection? trustedCertificates)
    {
        var config = new AmazonS3Config
        {
            ServiceURL = bucket.Endpoint.GetLeftPart(UriPartial.Authority),
            ForcePathStyle = true,
            AuthenticationRegion = bucket.Region,
            // S3-compatible stores (NooBaa, RGW) do not all accept the SDK's default flexible checksums.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 2,
            Timeout = TimeSpan.FromSeconds(30),
            HttpClientFactory = new TrustingHttpClientFactory(trustedCertificates),
        };
        return new AmazonS3Client(new BasicAWSCredentials(bucket.Credentials.AccessKeyId, bucket.Credentials.SecretAccessKey), config);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<T> RunAsync<T>(BucketFacts bucket, string operation, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (AmazonS3Exception ex)
        {
            var hint = ex.StatusCode switch
            {
                HttpStatusCode.NotImplemented or HttpStatusCode.MethodNotAllowed when operation.Contains("Multipart", StringComparison.Ordinal) =>
                    " The S3 service does not implement multipart uploads fully; the registry's S3 driver needs them for every push. Use NooBaa or Ceph RGW.",
                HttpStatusCode.NotImplemented => " The S3 service does not implement this operation, which the registry's S3 driver needs.",
                HttpStatusCode.Forbidden => " The bucket claim's keys are not allowed to do this; check the bucket policy.",
                HttpStatusCode.NotFound => " The bucket does not exist at this endpoint; check VddkS3Endpoint.",
                _ => "",
            };
            throw new VddkException(ErrorCodes.BucketVerificationFailed,
                $"S3 {operation} on bucket \"{bucket.BucketName}\" at {bucket.Endpoint} failed: {(int)ex.StatusCode} {ex.ErrorCode}: {ex.Message}.{hint}",
                bucket.Endpoint.ToString(), ex);
        }
        catch (Exception ex) when (ex is AmazonClientException or HttpRequestException or IOException or TaskCanceledException && ex is not OperationCanceledException { CancellationToken.IsCancellationRequested: true })
        {
            var tls = ex.ToString().Contains("RemoteCertificate", StringComparison.Ordinal) || ex.GetBaseException() is System.Security.Authentication.AuthenticationException;
            throw new VddkException(ErrorCodes.BucketVerificationFailed,
                $"S3 {operation} on bucket \"{bucket.BucketName}\" at {bucket.Endpoint} failed: {ex.GetBaseException().Message}." +
                (tls ? " The endpoint's certificate is trusted neither by the system trust store nor by the ingress CA bundle; if the S3 route uses another certificate, set VddkS3Endpoint accordingly." : " Check that this machine can reach the S3 route."),
                bucket.Endpoint.ToString(), ex);
        }
    }

    /// <summary>HTTP for the S3 client that trusts the system store plus the given CA bundle, as the registry does, ignoring AWS_CA_BUNDLE.</summary>
    private sealed class TrustingHttpClientFactory(X509Certificate2Collection? trusted) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig)
        {
            var proxy = EnvironmentProxy.FromEnvironment();
            var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2), Proxy = proxy, UseProxy = proxy is not null };
            if (trusted is { Count: > 0 })
            {
                handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => Validate(certificate, errors);
            }
            return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        }

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => true;

        public override string GetConfigUniqueString(IClientConfig clientConfig) => "vddkbuild-bucket-verifier";

        private bool Validate(X509Certificate? certificate, SslPolicyErrors errors)
        {
            if (certificate is null)
            {
                return false;
            }
            using var presented = new X509Certificate2(certificate);
            return IngressTrust.Validate(presented, errors, trusted!);
        }
    }
}
