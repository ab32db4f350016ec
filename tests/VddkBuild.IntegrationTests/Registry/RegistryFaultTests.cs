using System.Net;
using Microsoft.AspNetCore.Http;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>Faults injected by a proxy before the real registry: broken uploads, 5xx bursts, 429, persistent failure.</summary>
public sealed class RegistryFaultTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static bool IsBlobDataPut(HttpContext context) =>
        context.Request.Method == "PUT" && context.Request.Path.Value!.Contains("/blobs/uploads/", StringComparison.Ordinal) && context.Request.ContentLength > 0;

    [SkippableFact]
    public async Task ConnectionResetDuringBlobUpload_RestartsTheUploadFromAFreshPost()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await CountingProxy.StartAsync(registry.BaseUri);
        var broken = 0;
        proxy.Fault = async http =>
        {
            if (IsBlobDataPut(http) && Interlocked.Increment(ref broken) == 1)
            {
                var buffer = new byte[4096];
                await http.Request.Body.ReadAtLeastAsync(buffer, 1, throwOnEndOfStream: false);
                http.Abort();
                return true;
            }
            return false;
        };
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (image, blobs) = context.MakeBase("reset", 71);

        var result = await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(proxy.Authority, "fault/reset"), ["1"], new PushOptions { MaxParallelUploads = 1 }, context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        var uploads = proxy.Requests.Count(r => r.Method == "POST" && r.Kind == RegistryRequestKind.Upload);
        Assert.Equal(result.Uploaded + 1, uploads);
        Assert.Contains(context.Log.Lines, l => l.Message.Contains("retrying", StringComparison.Ordinal));
        var pulled = await new RegistryImageSource(session, result.PinnedReference).ResolveAsync(Platform.LinuxAmd64, None);
        Assert.Equal(image.Digest, pulled.ManifestDescriptor.Digest);
    }

    [SkippableFact]
    public async Task BurstOf5xxAnd429WithRetryAfter_AreRetriedAndThePushCompletes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await CountingProxy.StartAsync(registry.BaseUri);
        var statuses = new Queue<int>([500, 502, 503, 429]);
        proxy.Fault = async http =>
        {
            if (http.Request.Method == "PUT" && http.Request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal))
            {
                int status;
                lock (statuses)
                {
                    if (statuses.Count == 0)
                    {
                        return false;
                    }
                    status = statuses.Dequeue();
                }
                http.Response.StatusCode = status;
                if (status == 429)
                {
                    http.Response.Headers.RetryAfter = "1";
                }
                await http.Response.WriteAsync("{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"try later\"}]}");
                return true;
            }
            return false;
        };
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority) with
        {
            Retry = new RetrySettings { MaxAttempts = 5, BaseDelay = TimeSpan.FromMilliseconds(20) },
        });
        var (image, blobs) = context.MakeBase("burst", 72);
        var started = DateTime.UtcNow;

        var result = await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(proxy.Authority, "fault/burst"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(1), "Retry-After: 1 was not honoured");
        Assert.Equal(4, context.Log.Lines.Count(l => l.Message.Contains("retrying", StringComparison.Ordinal)));
    }

    [SkippableFact]
    public async Task PersistentServerErrorOnManifest_FailsWithVddk3004_AndTheTagDoesNotExist()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await CountingProxy.StartAsync(registry.BaseUri);
        proxy.Fault = http =>
        {
            if (http.Request.Method == "PUT" && http.Request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal))
            {
                http.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return Task.FromResult(true);
            }
            return Task.FromResult(false);
        };
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (image, blobs) = context.MakeBase("persistent", 73);
        var target = ImageReference.ForRepository(proxy.Authority, "fault/persistent");

        var error = await Assert.ThrowsAsync<VddkException>(() => new ImagePusher(session).PushAsync(image, blobs, target, ["1"], new PushOptions(), context.Log, None));

        Assert.Equal(ErrorCodes.RegistryRetriesExhausted, error.Code);
        Assert.Contains("503", error.Message);
        Assert.Contains("manifest", error.Message);
        Assert.Null(await session.GetClient(target).GetManifestAsync(target.Repository, "1", RegistryPurpose.Pull, None));
    }

    [SkippableFact]
    public async Task BlobRedirectToStorage_DoesNotSendTheRegistryAuthorization()
    {
        await using var context = new RegistryTestContext(output);
        var content = TestImages.RandomBytes(10_000);
        var digest = Digest.Compute(content);
        string? storageAuthorization = "not called";
        var storage = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            storageAuthorization = http.Request.Headers.Authorization.ToString();
            await http.Response.Body.WriteAsync(content);
        }));
        var registryAuthorizations = new List<string>();
        var registry = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            var authorization = http.Request.Headers.Authorization.ToString();
            registryAuthorizations.Add(authorization);
            if (authorization.Length == 0)
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"test\"";
                return;
            }
            http.Response.StatusCode = (int)HttpStatusCode.TemporaryRedirect;
            http.Response.Headers.Location = new Uri(storage.BaseUri, $"bucket/blob?X-Amz-Signature=sig").AbsoluteUri;
            await Task.CompletedTask;
        }));
        var credentials = new StaticCredentialProvider();
        credentials.Set(registry.Authority, new RegistryCredential("u", "registry-password", "test"));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, storage.Authority), credentials);

        await using (var blob = await session.GetClient(registry.Authority).OpenBlobAsync("r/x", new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = digest, Size = content.Length }, None))
        {
            using var copy = new MemoryStream();
            await blob.CopyToAsync(copy);
            Assert.Equal(content, copy.ToArray());
        }

        Assert.StartsWith("Basic ", registryAuthorizations[^1]);
        Assert.Equal(string.Empty, storageAuthorization);
    }
}
