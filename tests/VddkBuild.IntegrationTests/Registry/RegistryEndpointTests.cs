using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Faults;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// Where requests go when a registry points elsewhere (upload sessions on other hosts, redirects, plain-HTTP
/// addresses from an HTTPS registry), and how unusual answers are handled: credentials only ever go to the host they
/// belong to, nothing leaves unencrypted on a registry's say-so, and each case ends in a push or a coded error.
/// </summary>
public sealed class RegistryEndpointTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private const string Password = "registry-password-5b1c";

    private static readonly byte[] Content = Encoding.ASCII.GetBytes("a blob that goes somewhere else");
    private static readonly Descriptor Blob = new() { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Compute(Content), Size = Content.Length };

    private static StaticCredentialProvider CredentialsFor(string authority)
    {
        var credentials = new StaticCredentialProvider();
        credentials.Set(authority, new RegistryCredential("pusher", Password, "test"));
        return credentials;
    }

    private static bool Authorized(HttpContext http) =>
        http.Request.Headers.Authorization.ToString() == "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("pusher:" + Password));

    /// <summary>A registry with Basic auth whose upload sessions live at <paramref name="uploadLocation"/>.</summary>
    private static async Task<LoopbackWebServer> RegistryWithUploadsAtAsync(Func<string> uploadLocation, TestCertificateAuthority? ca = null)
    {
        return await LoopbackWebServer.StartAsync(async http =>
        {
            if (!Authorized(http))
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"test\"";
                return;
            }
            if (http.Request.Method == "HEAD")
            {
                http.Response.StatusCode = 404;
                return;
            }
            if (http.Request.Method == "POST")
            {
                http.Response.StatusCode = 202;
                http.Response.Headers.Location = uploadLocation();
                return;
            }
            http.Response.StatusCode = 400;
            await http.Response.WriteAsync("{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"unexpected\"}]}");
        }, ca?.ServerCertificate);
    }

    private static Task<BlobPushResult> UploadAsync(RegistrySession session, string authority, PushOptions? options = null) =>
        new BlobUploader(session.GetClient(authority), "team/vddk", options ?? new PushOptions(), session.Log)
            .PushAsync(Blob, "test blob", _ => Task.FromResult<Stream>(new MemoryStream(Content)), mountFrom: null, None);

    [SkippableFact]
    public async Task UploadSessionOnAnotherHost_GetsNoRegistryCredentials_AndItsAddressExactlyAsGiven()
    {
        await using var context = new RegistryTestContext(output);
        string? storageAuthorization = null, storageTarget = null;
        byte[]? stored = null;
        var storage = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            storageAuthorization = http.Request.Headers.Authorization.ToString();
            storageTarget = http.Features.Get<IHttpRequestFeature>()!.RawTarget;
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            stored = body.ToArray();
            http.Response.StatusCode = 201;
        }));
        var registry = context.Own(await RegistryWithUploadsAtAsync(() => new Uri(storage.BaseUri, "upload/session-1").AbsoluteUri + "?X-Signature=a%7Eb%2Fc"));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, storage.Authority), CredentialsFor(registry.Authority));

        var result = await UploadAsync(session, registry.Authority);

        Assert.Equal(BlobOutcome.Uploaded, result.Outcome);
        Assert.Equal(Content, stored);
        Assert.Equal(string.Empty, storageAuthorization);
        Assert.Equal($"/upload/session-1?X-Signature=a%7Eb%2Fc&digest=sha256%3A{Blob.Digest.Hex}", storageTarget);
    }

    [SkippableFact]
    public async Task HttpsRegistry_PointingAnUploadAtPlainHttp_FailsWithVddk3003_AndSendsNothingThere()
    {
        await using var context = new RegistryTestContext(output);
        using var ca = TestCertificateAuthority.Create(Path.Combine(context.Directory, "ca"));
        var plainRequests = 0;
        var plain = context.Own(await LoopbackWebServer.StartAsync(http =>
        {
            Interlocked.Increment(ref plainRequests);
            http.Response.StatusCode = 201;
            return Task.CompletedTask;
        }));
        var registry = context.Own(await RegistryWithUploadsAtAsync(() => new Uri(plain.BaseUri, "v2/team/vddk/blobs/uploads/u1").AbsoluteUri, ca: ca));
        Assert.Equal("https", registry.BaseUri.Scheme);
        using var session = context.Session(new RegistryTransportOptions { CaBundlePath = ca.CaCertificatePath }, CredentialsFor(registry.Authority));

        var error = await Assert.ThrowsAsync<VddkException>(() => UploadAsync(session, registry.Authority));

        Assert.Equal(ErrorCodes.RegistryTlsFailed, error.Code);
        Assert.Contains("plain-HTTP", error.Message, StringComparison.Ordinal);
        Assert.Contains("X-Forwarded-Proto", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, plainRequests);
        Assert.DoesNotContain(Password, error.ToString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task HttpsRegistry_PointingAnUploadAtPlainHttpOnAHostMarkedInsecure_Uploads()
    {
        await using var context = new RegistryTestContext(output);
        using var ca = TestCertificateAuthority.Create(Path.Combine(context.Directory, "ca"));
        string? plainAuthorization = null;
        var plain = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            plainAuthorization = http.Request.Headers.Authorization.ToString();
            await http.Request.Body.CopyToAsync(Stream.Null);
            http.Response.StatusCode = 201;
        }));
        var registry = context.Own(await RegistryWithUploadsAtAsync(() => new Uri(plain.BaseUri, "u1").AbsoluteUri, ca: ca));
        using var session = context.Session(new RegistryTransportOptions { CaBundlePath = ca.CaCertificatePath, InsecureRegistries = [plain.Authority] }, CredentialsFor(registry.Authority));

        var result = await UploadAsync(session, registry.Authority);

        Assert.Equal(BlobOutcome.Uploaded, result.Outcome);
        Assert.Equal(string.Empty, plainAuthorization);
    }

    [SkippableFact]
    public async Task ManifestRedirectToAnotherRegistry_IsFollowed_WithThatRegistrysAnonymousToken_AndNoRegistryCredentials()
    {
        await using var context = new RegistryTestContext(output);
        var manifest = Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:" + new string('a', 64) + "\",\"size\":2},\"layers\":[]}");
        var mirrorAuthorizations = new List<string>();
        LoopbackWebServer? mirror = null;
        mirror = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            var authorization = http.Request.Headers.Authorization.ToString();
            lock (mirrorAuthorizations)
            {
                mirrorAuthorizations.Add(authorization);
            }
            if (http.Request.Path == "/token")
            {
                await http.Response.WriteAsync(authorization.Length == 0 ? "{\"token\":\"anonymous-pull\",\"expires_in\":300}" : "{}");
                return;
            }
            if (authorization != "Bearer anonymous-pull")
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = $"Bearer realm=\"{new Uri(mirror!.BaseUri, "token")}\",service=\"mirror\",scope=\"repository:images/base:pull\"";
                return;
            }
            http.Response.ContentType = MediaTypes.OciManifest;
            await http.Response.Body.WriteAsync(manifest);
        }));
        var registry = context.Own(await LoopbackWebServer.StartAsync(http =>
        {
            if (!Authorized(http))
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"redirector\"";
                return Task.CompletedTask;
            }
            http.Response.StatusCode = (int)HttpStatusCode.TemporaryRedirect;
            http.Response.Headers.Location = new Uri(mirror.BaseUri, "v2/images/base/manifests/1.0").AbsoluteUri;
            return Task.CompletedTask;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, mirror.Authority), CredentialsFor(registry.Authority));

        var response = await session.GetClient(registry.Authority).GetManifestAsync("base", "1.0", RegistryPurpose.Pull, None);

        Assert.NotNull(response);
        Assert.Equal(manifest, response.Bytes);
        Assert.Equal(Digest.Compute(manifest), response.Digest);
        Assert.Contains("Bearer anonymous-pull", mirrorAuthorizations);
        Assert.DoesNotContain(mirrorAuthorizations, a => a.StartsWith("Basic", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task Unauthorized_WithoutAChallenge_SaysSo_NotThatCredentialsAreMissing()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await LoopbackWebServer.StartAsync(http =>
        {
            http.Response.StatusCode = 401;
            return Task.CompletedTask;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority), CredentialsFor(registry.Authority));

        var error = await Assert.ThrowsAsync<VddkException>(() => session.GetClient(registry.Authority).GetManifestAsync("base", "1.0", RegistryPurpose.Pull, None));

        Assert.Equal(ErrorCodes.RegistryAuthFailed, error.Code);
        Assert.Contains("without a WWW-Authenticate header", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("no credentials were found", error.Message, StringComparison.Ordinal);
    }

    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)] // chunked: the size shows only while it is read
    public async Task A_manifest_answer_over_8_MiB_is_VDDK3010_at_once_not_a_connection_failure(bool withLength)
    {
        await using var context = new RegistryTestContext(output);
        var requests = 0;
        var registry = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            Interlocked.Increment(ref requests);
            http.Response.ContentType = MediaTypes.OciManifest;
            var chunk = new byte[1024 * 1024];
            Array.Fill(chunk, (byte)' ');
            if (withLength)
            {
                http.Response.ContentLength = 9L * chunk.Length;
            }
            for (var i = 0; i < 9; i++)
            {
                await http.Response.Body.WriteAsync(chunk);
            }
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority), CredentialsFor(registry.Authority));

        var error = await Assert.ThrowsAsync<VddkException>(() => session.GetClient(registry.Authority).GetManifestAsync("base", "1.0", RegistryPurpose.Pull, None));

        Assert.Equal(ErrorCodes.RegistryResponseInvalid, error.Code);
        Assert.Contains("more than 8 MiB", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, requests);
    }

    [SkippableFact]
    public async Task An_answer_whose_headers_exceed_the_limit_is_VDDK3010_about_its_headers_not_its_body()
    {
        await using var context = new RegistryTestContext(output);
        var requests = 0;
        var registry = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            Interlocked.Increment(ref requests);
            http.Response.ContentType = MediaTypes.OciManifest;
            http.Response.Headers["X-Filler"] = new string('x', 200 * 1024);
            await http.Response.WriteAsync("{}");
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority), CredentialsFor(registry.Authority));

        var error = await Assert.ThrowsAsync<VddkException>(() => session.GetClient(registry.Authority).GetManifestAsync("base", "1.0", RegistryPurpose.Pull, None));

        Assert.Equal(ErrorCodes.RegistryResponseInvalid, error.Code);
        Assert.Contains("headers", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("8 MiB", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, requests);
    }

    [SkippableTheory]
    [InlineData(400, "BLOB_UPLOAD_INVALID")]
    [InlineData(404, "BLOB_UPLOAD_UNKNOWN")]
    [InlineData(400, "")]
    public async Task SingleRequestUploadRefusedWithAnUploadError_FallsBackToChunks(int status, string code)
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await FaultProxy.StartAsync(registry.BaseUri);
        proxy.Add("no single-request uploads", request => request.Method == "PUT" && request.ContentLength > 0,
            RegistryFault.Custom($"HTTP {status} {code}", async (http, _) =>
            {
                await http.Request.Body.CopyToAsync(Stream.Null);
                http.Response.StatusCode = status;
                if (code.Length > 0)
                {
                    await http.Response.WriteAsync($"{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"single-request uploads are not supported\"}}]}}");
                }
            }), times: 100);
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));

        var result = await UploadAsync(session, proxy.Authority);

        Assert.Equal(BlobOutcome.Uploaded, result.Outcome);
        Assert.Contains(proxy.Requests, r => r.Method == "PATCH");
        Assert.True(await session.GetClient(proxy.Authority).BlobExistsAsync("team/vddk", Blob.Digest, RegistryPurpose.Pull, None));
    }

    [SkippableFact]
    public async Task SingleRequestUploadRefusedWithADigestError_IsReportedAndNotRetriedInChunks()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await FaultProxy.StartAsync(registry.BaseUri);
        proxy.Add("digest refused", request => request.Method == "PUT" && request.ContentLength > 0,
            RegistryFault.Custom("HTTP 400 DIGEST_INVALID", async (http, _) =>
            {
                await http.Request.Body.CopyToAsync(Stream.Null);
                http.Response.StatusCode = 400;
                await http.Response.WriteAsync("{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"provided digest did not match uploaded content\"}]}");
            }), times: 100);
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));

        var error = await Assert.ThrowsAsync<VddkException>(() => UploadAsync(session, proxy.Authority));

        Assert.Equal(ErrorCodes.RegistryRequestFailed, error.Code);
        Assert.Contains("DIGEST_INVALID", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(proxy.Requests, r => r.Method == "PATCH");
    }

    [SkippableFact]
    public async Task ManifestPut_RedirectedWith307_IsFollowed_AndADigestOfAnotherAlgorithmIsChecked()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await FaultProxy.StartAsync(registry.BaseUri);
        // The manifest PUT is sent on with 307 to the same registry under /moved, which the proxy maps back; the
        // answer names the manifest by sha512 (of the very bytes stored).
        proxy.Add("manifest PUT moved", request => request.Method == "PUT" && request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal) && !request.Path.Value.StartsWith("/moved", StringComparison.Ordinal),
            RegistryFault.Custom("307 to /moved", (http, _) =>
            {
                http.Response.StatusCode = 307;
                http.Response.Headers.Location = "/moved" + http.Request.Path + http.Request.QueryString;
                return Task.CompletedTask;
            }), times: 100);
        proxy.Add("moved", request => request.Path.StartsWithSegments("/moved"), RegistryFault.Custom("forwarded, sha512 digest", async (http, forwarder) =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            http.Request.Path = http.Request.Path.Value!["/moved".Length..];
            http.Request.Body = new MemoryStream(body.ToArray());
            http.Response.OnStarting(() =>
            {
                http.Response.Headers["Docker-Content-Digest"] = "sha512:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA512.HashData(body.ToArray()));
                return Task.CompletedTask;
            });
            await forwarder.ForwardAsync(http);
        }), times: 100);
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (image, blobs) = context.MakeBase("moved", 91);

        var result = await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(proxy.Authority, "team/moved"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.Contains(proxy.Injected, f => f.Rule == "manifest PUT moved");
        Assert.Contains(proxy.Injected, f => f.Rule == "moved" && f.Method == "PUT");
    }

    [SkippableFact]
    public async Task BlobHeadRedirectedToStorageThatSays404_MeansTheBlobIsUploaded()
    {
        await using var context = new RegistryTestContext(output);
        var storage = context.Own(await LoopbackWebServer.StartAsync(http =>
        {
            http.Response.StatusCode = 404;
            return Task.CompletedTask;
        }));
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        await using var proxy = await FaultProxy.StartAsync(registry.BaseUri);
        proxy.Add("HEAD to storage", request => request.Method == "HEAD" && request.Path.Value!.Contains("/blobs/sha256:", StringComparison.Ordinal),
            RegistryFault.Custom("307 to storage", (http, _) =>
            {
                http.Response.StatusCode = 307;
                http.Response.Headers.Location = new Uri(storage.BaseUri, "bucket/blob?X-Amz-Signature=s").AbsoluteUri;
                return Task.CompletedTask;
            }), times: 100);
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, storage.Authority));

        var result = await UploadAsync(session, proxy.Authority);

        Assert.Equal(BlobOutcome.Uploaded, result.Outcome);
    }

    /// <summary>
    /// A blob download redirected to a CDN or storage with a signed URL (registry.redhat.io, Quay, GHCR and registries
    /// on S3, GCS or Azure do this): the URL is requested exactly as the registry gave it, escapes of unreserved
    /// characters (<c>%7E</c>, <c>%41</c>) included, since a signature may cover them; the registry's credentials stay
    /// behind. A relative redirect keeps its escapes too.
    /// </summary>
    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task BlobDownloadRedirectedToASignedUrl_IsRequestedByteForByte_WithoutTheRegistrysCredentials(bool otherHost)
    {
        await using var context = new RegistryTestContext(output);
        const string signed = "/cdn/blob?Expires=1700000000&Signature=a%7Eb%41c%2Fd%2bE&Key-Pair-Id=K1";
        string? cdnTarget = null, cdnAuthorization = null;
        async Task ServeBlob(HttpContext http)
        {
            cdnTarget = http.Features.Get<IHttpRequestFeature>()!.RawTarget;
            cdnAuthorization = http.Request.Headers.Authorization.ToString();
            await http.Response.Body.WriteAsync(Content);
        }
        var cdn = context.Own(await LoopbackWebServer.StartAsync(ServeBlob));
        var registry = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            if (http.Request.Path.StartsWithSegments("/cdn"))
            {
                await ServeBlob(http);
                return;
            }
            if (!Authorized(http))
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"test\"";
                return;
            }
            http.Response.StatusCode = (int)HttpStatusCode.Found;
            http.Response.Headers.Location = otherHost ? new Uri(cdn.BaseUri, "/").AbsoluteUri.TrimEnd('/') + signed : signed;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, cdn.Authority), CredentialsFor(registry.Authority));

        var pulled = await session.GetClient(registry.Authority).ReadBlobAsync("team/vddk", Blob, None);

        Assert.Equal(Content, pulled);
        Assert.Equal(signed, cdnTarget);
        Assert.Equal(otherHost ? string.Empty : "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("pusher:" + Password)), cdnAuthorization);
    }

    /// <summary>
    /// Docker Hub, web application firewalls in front of registries and CDNs answer 403 to requests without a
    /// User-Agent (goharbor/harbor#23025 for Docker Hub). Every request names the client: the registry, its token
    /// endpoint, and the storage a blob download is redirected to.
    /// </summary>
    [SkippableFact]
    public async Task EveryRequest_NamesTheClientInUserAgent_AsRegistriesBehindFirewallsRequire()
    {
        await using var context = new RegistryTestContext(output);
        var seen = new System.Collections.Concurrent.ConcurrentBag<string>();
        static async Task<bool> RefusedWithoutUserAgent(HttpContext http, System.Collections.Concurrent.ConcurrentBag<string> seen)
        {
            var agent = http.Request.Headers.UserAgent.ToString();
            seen.Add($"{http.Request.Method} {http.Request.Path} [{agent}]");
            if (agent.Length > 0)
            {
                return false;
            }
            http.Response.StatusCode = 403;
            http.Response.ContentType = "text/html";
            await http.Response.WriteAsync("<html><body>Request blocked: missing user agent</body></html>");
            return true;
        }
        var cdn = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            if (!await RefusedWithoutUserAgent(http, seen))
            {
                await http.Response.Body.WriteAsync(Content);
            }
        }));
        LoopbackWebServer? registry = null;
        registry = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            if (await RefusedWithoutUserAgent(http, seen))
            {
                return;
            }
            if (http.Request.Path == "/token")
            {
                await http.Response.WriteAsync("{\"token\":\"pull-token\"}");
                return;
            }
            if (http.Request.Headers.Authorization.ToString() != "Bearer pull-token")
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = $"Bearer realm=\"{new Uri(registry!.BaseUri, "token")}\",service=\"hub\"";
                return;
            }
            http.Response.StatusCode = (int)HttpStatusCode.TemporaryRedirect;
            http.Response.Headers.Location = new Uri(cdn.BaseUri, "blob").AbsoluteUri;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, cdn.Authority));

        var pulled = await session.GetClient(registry.Authority).ReadBlobAsync("library/base", Blob, None);

        Assert.Equal(Content, pulled);
        Assert.Contains(seen, request => request.StartsWith("GET /token", StringComparison.Ordinal));
        Assert.Contains(seen, request => request.StartsWith("GET /blob", StringComparison.Ordinal));
        Assert.All(seen, request => Assert.Contains("[vddkbuild/", request, StringComparison.Ordinal));
    }

    /// <summary>
    /// A registry with a private CA (a disconnected mirror registry, a self-hosted Harbor or Nexus) is commonly trusted
    /// for podman the way containers-certs.d(5) describes: its CA in <c>certs.d/&lt;host:port&gt;/ca.crt</c>. That
    /// CA is trusted for that registry alone, as podman does; another registry with a certificate from the same CA
    /// is still refused (VDDK3003).
    /// </summary>
    [SkippableFact]
    public async Task PrivateCa_InPodmansCertsDirectoryForTheRegistry_IsTrustedForThatRegistryOnly()
    {
        await using var context = new RegistryTestContext(output);
        using var ca = TestCertificateAuthority.Create(Path.Combine(context.Directory, "ca"));
        async Task Serve(HttpContext http) => await http.Response.Body.WriteAsync(Content);
        var registry = context.Own(await LoopbackWebServer.StartAsync(Serve, ca.ServerCertificate));
        var other = context.Own(await LoopbackWebServer.StartAsync(Serve, ca.ServerCertificate));
        var folder = Path.Combine(context.Directory, "home", ".config", "containers", "certs.d", registry.Authority);
        Directory.CreateDirectory(folder);
        File.Copy(ca.CaCertificatePath, Path.Combine(folder, "ca.crt"));
        using var session = context.Session(new RegistryTransportOptions());

        var pulled = await session.GetClient(registry.Authority).ReadBlobAsync("team/vddk", Blob, None);
        var refused = await Assert.ThrowsAsync<VddkException>(() => session.GetClient(other.Authority).ReadBlobAsync("team/vddk", Blob, None));

        Assert.Equal(Content, pulled);
        Assert.Equal(ErrorCodes.RegistryTlsFailed, refused.Code);
        Assert.Contains("certs.d", refused.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task UploadHostThatChallenges_GetsTheCredentialsStoredUnderItsName_EvenWhenItsFirstRequestIsStreamed()
    {
        await using var context = new RegistryTestContext(output);
        string? lastStorageAuthorization = null;
        var storage = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            lastStorageAuthorization = http.Request.Headers.Authorization.ToString();
            await http.Request.Body.CopyToAsync(Stream.Null);
            if (lastStorageAuthorization != "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("uploader:storage-secret")))
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"upload\"";
                return;
            }
            http.Response.StatusCode = 201;
        }));
        var registry = context.Own(await RegistryWithUploadsAtAsync(() => new Uri(storage.BaseUri, "upload/s1").AbsoluteUri));
        var home = Path.Combine(context.Directory, "home");
        Directory.CreateDirectory(Path.Combine(home, ".docker"));
        await File.WriteAllTextAsync(Path.Combine(home, ".docker", "config.json"),
            $"{{\"auths\": {{\"{storage.Authority}\": {{\"auth\": \"{Convert.ToBase64String(Encoding.UTF8.GetBytes("uploader:storage-secret"))}\"}}}}}}");
        context.Environment["HOME"] = home;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, storage.Authority), CredentialsFor(registry.Authority));

        var result = await UploadAsync(session, registry.Authority);

        Assert.Equal(BlobOutcome.Uploaded, result.Outcome);
        Assert.StartsWith("Basic ", lastStorageAuthorization);
        Assert.DoesNotContain(Password, context.Log.AllText);
    }
}
