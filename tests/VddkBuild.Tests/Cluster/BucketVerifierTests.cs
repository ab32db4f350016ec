using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

/// <summary>
/// The verifier's sequence and error naming, against a minimal path-style S3 over TLS (the real-S3 run against Ceph
/// RGW and s3rver belongs to the integration tests).
/// </summary>
public sealed class BucketVerifierTests : IAsyncLifetime
{
    private readonly LoopbackCertificates _certificates = LoopbackCertificates.Create("S3 route CA");
    private readonly ConcurrentDictionary<string, byte[]> _objects = new();
    private readonly ConcurrentDictionary<string, string> _uploads = new();
    private readonly ConcurrentQueue<string> _operations = new();
    private WebApplication _app = null!;
    private Uri _endpoint = null!;

    private bool ListUploadsImplemented { get; set; } = true;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(_certificates.Server)));
        _app = builder.Build();
        _app.Run(HandleAsync);
        await _app.StartAsync();
        _endpoint = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _certificates.Dispose();
    }

    private BucketFacts Bucket => new("registry", _endpoint, "us-east-1", null, null, new BucketCredentials("AKIDTEST", "secret"));

    private X509Certificate2Collection Trust => [_certificates.Authority];

    [Fact]
    public async Task Runs_every_operation_the_registry_driver_needs_and_leaves_nothing_behind()
    {
        await BucketVerifier.VerifyAsync(Bucket, Trust, new RecordingLog(), CancellationToken.None);

        Assert.Equal(["HeadBucket", "PutObject", "GetObject", "DeleteObject", "CreateMultipartUpload", "ListMultipartUploads", "AbortMultipartUpload"], _operations);
        Assert.Empty(_objects);
        Assert.Empty(_uploads);
    }

    [Fact]
    public async Task An_s3_without_ListMultipartUploads_fails_naming_that_operation()
    {
        ListUploadsImplemented = false;

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketVerifier.VerifyAsync(Bucket, Trust, new RecordingLog(), CancellationToken.None));

        Assert.Equal(ErrorCodes.BucketVerificationFailed, error.Code);
        Assert.Contains("S3 ListMultipartUploads on bucket \"registry\"", error.Message);
        Assert.Contains("multipart", error.Message);
        Assert.Empty(_uploads);
    }

    [Fact]
    public async Task An_endpoint_certificate_outside_the_bundle_fails_the_first_operation()
    {
        using var other = LoopbackCertificates.Create("Unrelated CA");

        var error = await Assert.ThrowsAsync<VddkException>(() => BucketVerifier.VerifyAsync(Bucket, [other.Authority], new RecordingLog(), CancellationToken.None));

        Assert.Equal(ErrorCodes.BucketVerificationFailed, error.Code);
        Assert.Contains("S3 HeadBucket", error.Message);
        Assert.Empty(_operations);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value!.TrimStart('/');
        var key = path.Contains('/') ? path[(path.IndexOf('/') + 1)..] : "";
        if (!request.Headers.Authorization.ToString().Contains("Credential=AKIDTEST/", StringComparison.Ordinal))
        {
            await Error(context, 403, "AccessDenied");
            return;
        }
        var query = request.Query;
        switch (request.Method)
        {
            case "HEAD" when key.Length == 0:
                _operations.Enqueue("HeadBucket");
                return;
            case "PUT" when !query.ContainsKey("uploadId"):
                using (var buffer = new MemoryStream())
                {
                    await request.Body.CopyToAsync(buffer);
                    _objects[key] = buffer.ToArray();
                }
                _operations.Enqueue("PutObject");
                context.Response.Headers.ETag = "\"etag\"";
                return;
            case "GET" when query.ContainsKey("uploads"):
                if (!ListUploadsImplemented)
                {
                    await Error(context, 501, "NotImplemented");
                    return;
                }
                _operations.Enqueue("ListMultipartUploads");
                var uploads = string.Concat(_uploads.Select(u => $"<Upload><Key>{u.Value}</Key><UploadId>{u.Key}</UploadId></Upload>"));
                await Xml(context, $"<ListMultipartUploadsResult><Bucket>registry</Bucket>{uploads}</ListMultipartUploadsResult>");
                return;
            case "GET":
                _operations.Enqueue("GetObject");
                if (!_objects.TryGetValue(key, out var data))
                {
                    await Error(context, 404, "NoSuchKey");
                    return;
                }
                context.Response.ContentLength = data.Length;
                await context.Response.Body.WriteAsync(data);
                return;
            case "DELETE" when query.ContainsKey("uploadId"):
                _operations.Enqueue("AbortMultipartUpload");
                _uploads.TryRemove(query["uploadId"].ToString(), out _);
                context.Response.StatusCode = 204;
                return;
            case "DELETE":
                _operations.Enqueue("DeleteObject");
                _objects.TryRemove(key, out _);
                context.Response.StatusCode = 204;
                return;
            case "POST" when query.ContainsKey("uploads"):
                _operations.Enqueue("CreateMultipartUpload");
                var id = Guid.NewGuid().ToString("N");
                _uploads[id] = key;
                await Xml(context, $"<InitiateMultipartUploadResult><Bucket>registry</Bucket><Key>{key}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>");
                return;
            default:
                await Error(context, 501, "NotImplemented");
                return;
        }
    }

    private static Task Xml(HttpContext context, string body)
    {
        context.Response.ContentType = "application/xml";
        return context.Response.WriteAsync("<?xml version=\"1.0\" encoding=\"UTF-8\"?>" + body);
    }

    private static Task Error(HttpContext context, int status, string code)
    {
        context.Response.StatusCode = status;
        return Xml(context, $"<Error><Code>{code}</Code><Message>{code}</Message></Error>");
    }
}
