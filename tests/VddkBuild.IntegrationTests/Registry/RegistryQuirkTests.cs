using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// Documented behaviours of real registries and the proxies in front of them, imitated by a proxy in front of a real
/// docker-registry (or a small fake): each push completes, or fails with a coded error that says what to change.
/// </summary>
public sealed class RegistryQuirkTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>A proxy in front of <paramref name="registry"/>; <paramref name="quirk"/> answers a request itself (true) or lets it through.</summary>
    private static Task<LoopbackWebServer> ProxyAsync(DockerRegistryProcess registry, Func<HttpContext, Task<bool>> quirk, Action<HttpContext>? beforeForward = null)
    {
        var forwarder = new ReverseProxyForwarder(registry.BaseUri);
        return LoopbackWebServer.StartAsync(async http =>
        {
            if (await quirk(http))
            {
                return;
            }
            beforeForward?.Invoke(http);
            await forwarder.ForwardAsync(http);
        });
    }

    private static async Task<byte[]> PulledLayerAsync(RegistrySession session, string authority, string repository, string tag, Descriptor layer)
    {
        var source = new RegistryImageSource(session, ImageReference.Parse($"{authority}/{repository}:{tag}"));
        await using var stream = await source.OpenBlobAsync(layer, None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// nginx in front of a registry (Nexus, Harbor, a self-hosted distribution) refuses bodies over
    /// client_max_body_size, 1 MiB unless raised, with 413: the single-request upload and the 16 MiB chunks are
    /// refused, smaller chunks get through.
    /// </summary>
    [SkippableFact]
    public async Task ProxyCappingRequestBodies_BelowTheChunkSize_GetsTheBlobInSmallerChunks()
    {
        const int limit = 100_000;
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var largestForwarded = 0L;
        var proxy = context.Own(await ProxyAsync(registry, async http =>
        {
            if (http.Request.ContentLength is > limit)
            {
                await http.Request.Body.CopyToAsync(Stream.Null);
                http.Response.StatusCode = 413;
                http.Response.ContentType = "text/html";
                await http.Response.WriteAsync("<html><head><title>413 Request Entity Too Large</title></head><body>nginx</body></html>");
                return true;
            }
            InterlockedMax(ref largestForwarded, http.Request.ContentLength ?? 0);
            return false;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, registry.Authority));
        var (baseImage, baseSource) = await RegistryPushPullTests.PushBaseAsync(context, session, registry.Authority, "base/capped", 21);
        var image = context.Derive(baseImage, 22, size: 600 * 1024);

        var result = await new ImagePusher(session).PushAsync(image, baseSource, RegistryTestContext.Reference(proxy.Authority, "vddk/capped"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.InRange(largestForwarded, 1, limit);
        Assert.Equal(await File.ReadAllBytesAsync(image.VddkLayer.FilePath), await PulledLayerAsync(session, registry.Authority, "vddk/capped", "1", image.VddkLayer.Descriptor));
        Assert.Contains("(HTTP 413); uploading in chunks of", context.Log.AllText, StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task ProxyCappingRequestBodies_BelowTheSmallestChunk_FailsWithVddk3009_NamingTheProxyLimit()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var proxy = context.Own(await ProxyAsync(registry, async http =>
        {
            if (http.Request.ContentLength is > 1000)
            {
                await http.Request.Body.CopyToAsync(Stream.Null);
                http.Response.StatusCode = 413;
                return true;
            }
            return false;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (image, blobs) = context.MakeBase("tiny-limit", 23);

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(proxy.Authority, "vddk/tiny-limit"), ["1"], new PushOptions(), context.Log, None));

        Assert.Equal(ErrorCodes.RegistryRequestFailed, error.Code);
        Assert.Contains("413", error.Message, StringComparison.Ordinal);
        Assert.Contains("client_max_body_size", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// AWS ECR's PATCH answers keep the Range of the first chunk (aws/containers-roadmap#2831); zot gave the current
    /// chunk's range alone (regclient#961). The bytes are stored all the same, and the commit's digest check proves it.
    /// </summary>
    [SkippableTheory]
    [InlineData("stays-at-first-chunk")]
    [InlineData("current-chunk-only")]
    public async Task ChunkedUpload_ThroughARegistryWhoseRangeAnswerDisagrees_Completes(string rangeQuirk)
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var firstRange = new ConcurrentDictionary<string, string>();
        var proxy = context.Own(await ProxyAsync(registry, _ => Task.FromResult(false), http =>
        {
            if (!HttpMethods.IsPatch(http.Request.Method))
            {
                return;
            }
            var session = http.Request.Path.Value!;
            var length = http.Request.ContentLength ?? 0;
            http.Response.OnStarting(() =>
            {
                if (http.Response.StatusCode == 202 && http.Response.Headers.TryGetValue("Range", out var range))
                {
                    http.Response.Headers["Range"] = rangeQuirk == "stays-at-first-chunk" ? firstRange.GetOrAdd(session, range.ToString()) : $"0-{length - 1}";
                }
                return Task.CompletedTask;
            });
        }));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (image, blobs) = context.MakeBase("range-" + rangeQuirk, 24);

        var result = await new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(proxy.Authority, "vddk/range"), ["1"],
            new PushOptions { ForceChunkedUpload = true, ChunkSize = 10_000 }, context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        var pulled = await new RegistryImageSource(session, ImageReference.Parse($"{proxy.Authority}/vddk/range:1")).ResolveAsync(Platform.LinuxAmd64, None);
        Assert.Equal(image.ManifestBytes, pulled.ManifestBytes);
        Assert.DoesNotContain("retrying", context.Log.AllText, StringComparison.Ordinal);
    }

    /// <summary>A chunk the registry really lost (its Range says so, then the digest check fails): the upload starts over.</summary>
    [SkippableFact]
    public async Task ChunkLostByTheRegistry_RangeShort_ThenCommitRefused_IsUploadedAgain()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var dropped = 0;
        var proxy = context.Own(await ProxyAsync(registry, async http =>
        {
            // The last chunk of the first session never reaches the registry; the answer looks like a stale Range.
            if (HttpMethods.IsPatch(http.Request.Method) && http.Request.Headers["Content-Range"].ToString() == "20000-29999"
                && Interlocked.CompareExchange(ref dropped, 1, 0) == 0)
            {
                await http.Request.Body.CopyToAsync(Stream.Null);
                http.Response.StatusCode = 202;
                http.Response.Headers.Location = http.Features.Get<IHttpRequestFeature>()!.RawTarget;
                http.Response.Headers["Range"] = "0-9999";
                return true;
            }
            return false;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, registry.Authority));
        var content = new byte[30_000];
        new Random(25).NextBytes(content);
        var blob = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Compute(content), Size = content.Length };

        var result = await new BlobUploader(session.GetClient(proxy.Authority), "vddk/lost", new PushOptions { ForceChunkedUpload = true, ChunkSize = 10_000 }, context.Log)
            .PushAsync(blob, "test blob", _ => Task.FromResult<Stream>(new MemoryStream(content)), mountFrom: null, None);

        Assert.Equal(BlobOutcome.Uploaded, result.Outcome);
        Assert.Equal(1, dropped);
        Assert.Contains("refused to commit the upload", context.Log.AllText, StringComparison.Ordinal);
        Assert.True(await session.GetClient(registry.Authority).BlobExistsAsync("vddk/lost", blob.Digest, RegistryPurpose.Pull, None));
    }

    /// <summary>
    /// AWS ECR never creates a repository on push (404 NAME_UNKNOWN, aws/containers-roadmap#853), nor does Harbor a
    /// project: the error says to create it.
    /// </summary>
    [SkippableTheory]
    [InlineData("NAME_UNKNOWN", "The repository with name 'team/vddk' does not exist in the registry with id '123456789012'")]
    [InlineData("NOT_FOUND", "project team not found")]
    public async Task PushToARepositoryTheRegistryDoesNotCreate_FailsWithVddk3009_SayingToCreateIt(string code, string message)
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            http.Response.StatusCode = 404;
            if (!HttpMethods.IsHead(http.Request.Method))
            {
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync($"{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{message}\"}}]}}");
            }
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var content = Encoding.ASCII.GetBytes("a blob for a repository that does not exist");
        var blob = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Compute(content), Size = content.Length };

        var error = await Assert.ThrowsAsync<VddkException>(() => new BlobUploader(session.GetClient(registry.Authority), "team/vddk", new PushOptions(), context.Log)
            .PushAsync(blob, "test blob", _ => Task.FromResult<Stream>(new MemoryStream(content)), mountFrom: null, None));

        Assert.Equal(ErrorCodes.RegistryRequestFailed, error.Code);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains("create it first", error.Message, StringComparison.Ordinal);
        Assert.Contains("aws ecr create-repository --repository-name team/vddk", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// zot names its token endpoint by a path (<c>realm="/zot/auth/token"</c>, project-zot/zot#4033), as may a
    /// registry behind a path-mapping proxy: a real docker-registry configured so, its token service on the same
    /// address. The realm is resolved against the registry, as regclient and containerd do.
    /// </summary>
    [SkippableFact]
    public async Task BearerRealmGivenAsAPath_IsResolvedAgainstTheRegistry_AndThePushCompletes()
    {
        const string user = "builder";
        const string password = "s3cret-relative-realm";
        await using var context = new RegistryTestContext(output);
        var tokens = context.Own(await TestTokenServer.StartAsync(Path.Combine(context.Directory, "token"), new Dictionary<string, string> { [user] = password }));
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Token = tokens.Settings with { Realm = "/token" } }));
        var toTokens = new ReverseProxyForwarder(new Uri(tokens.Realm));
        var front = context.Own(await ProxyAsync(registry, async http =>
        {
            if (http.Request.Path == "/token")
            {
                await toTokens.ForwardAsync(http);
                return true;
            }
            return false;
        }));
        context.Environment[EnvironmentCredentialProvider.PushUserVariable] = user;
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = password;
        using var session = context.Session(RegistryTestContext.Insecure(front.Authority));
        var (image, blobs) = context.MakeBase("relative-realm", 26);

        var result = await new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(front.Authority, "vddk/relative-realm"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.Contains(tokens.Requests, r => r.PasswordAccepted && r.Scopes.Contains("repository:vddk/relative-realm:pull,push"));
        Assert.DoesNotContain(password, context.Log.AllText, StringComparison.Ordinal);
    }

    /// <summary>
    /// Registries that keep tags immutable refuse to write a tag that exists, even with the manifest it already has:
    /// AWS ECR (IMMUTABLE repositories: 400 TAG_INVALID), Harbor (immutability rules: 412 PRECONDITION), Docker Hub
    /// (immutable tags: 403 DENIED). A re-run with nothing changed gives the same image: it completes, since the tag
    /// already names exactly that image; another image under that tag is still refused, and the tag is unchanged.
    /// </summary>
    [SkippableTheory]
    [InlineData(400, "TAG_INVALID", "The image tag '1' already exists in the 'vddk/immutable' repository and cannot be overwritten because the repository is immutable.")]
    [InlineData(412, "PRECONDITION", "The image vddk/immutable:1 is configured as immutable, cannot be pushed again.")]
    [InlineData(403, "DENIED", "The tag 1 is immutable.")]
    public async Task ImmutableTag_PushedAgainWithTheSameImage_Completes_AndAnotherImageIsStillRefused(int status, string code, string message)
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var written = new ConcurrentDictionary<string, bool>();
        var refusals = 0;
        var proxy = context.Own(await ProxyAsync(registry, async http =>
        {
            var path = http.Request.Path.Value!;
            if (!HttpMethods.IsPut(http.Request.Method) || !path.Contains("/manifests/", StringComparison.Ordinal) || path.Contains("/manifests/sha256:", StringComparison.Ordinal)
                || written.TryAdd(path, true))
            {
                return false;
            }
            Interlocked.Increment(ref refusals);
            await http.Request.Body.CopyToAsync(Stream.Null);
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json";
            await http.Response.WriteAsync($$"""{"errors":[{"code":"{{code}}","message":"{{message}}"}]}""");
            return true;
        }));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, registry.Authority));
        var (image, blobs) = context.MakeBase("immutable", 29);
        var target = RegistryTestContext.Reference(proxy.Authority, "vddk/immutable");
        var first = await new ImagePusher(session).PushAsync(image, blobs, target, ["1"], new PushOptions(), context.Log, None);

        var again = await new ImagePusher(session).PushAsync(image, blobs, target, ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(first.Digest, again.Digest);
        Assert.Equal(image.Digest, again.Digest);
        Assert.Equal(1, refusals);
        Assert.Contains("already names this image", context.Log.AllText, StringComparison.Ordinal);

        var (other, otherBlobs) = context.MakeBase("immutable-other", 30);
        var refused = await Assert.ThrowsAsync<VddkException>(() =>
            new ImagePusher(session).PushAsync(other, otherBlobs, target, ["1"], new PushOptions(), context.Log, None));
        Assert.Contains(code, refused.Message, StringComparison.Ordinal);
        Assert.Contains(status == 400 ? "tags are immutable" : $"already names another image ({image.Digest})", refused.Message, StringComparison.Ordinal);
        Assert.Equal(image.Digest, await session.GetClient(registry.Authority).TryGetManifestDigestAsync("vddk/immutable", "1", None));
    }

    /// <summary>
    /// Artifactory's repository path method (and Nexus' path-based routing) serves several repositories of one host,
    /// each with its own token endpoint (<c>realm=".../api/docker/&lt;repository key&gt;/v2/token"</c>, scopes without
    /// the key), and a token of one is refused by another. With the base in one (a remote repository mirroring
    /// registry.access.redhat.com) and the push to another, each base layer is read from the one while it is
    /// streamed to the other: each request must be authorized for its own repository, whatever the last challenge
    /// seen for the host was. Cross-repository mounts are not offered there (the mount request opens a session).
    /// </summary>
    [SkippableFact]
    public async Task RepositoriesOfOneHostWithTheirOwnTokenRealms_BaseStreamedFromOneToTheOther_Pushes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        LoopbackWebServer? front = null;
        var refusedUploads = 0;
        front = context.Own(await ProxyAsync(registry, async http =>
        {
            var segments = http.Request.Path.Value!.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (segments is ["token", var realmKey])
            {
                await http.Response.WriteAsync("{\"token\":\"token-of-" + realmKey + "\"}");
                return true;
            }
            if (segments is ["v2", var key, .. var rest] && rest.Length > 0 && http.Request.Headers.Authorization.ToString() != "Bearer token-of-" + key)
            {
                if (HttpMethods.IsPut(http.Request.Method) && http.Request.ContentLength > 0)
                {
                    Interlocked.Increment(ref refusedUploads);
                }
                var name = string.Join('/', rest.TakeWhile(part => part is not ("blobs" or "manifests")));
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = $"Bearer realm=\"{new Uri(front!.BaseUri, "token/" + key)}\",service=\"artifactory\",scope=\"repository:{name}:pull\"";
                return true;
            }
            return false;
        }, http =>
        {
            if (http.Request.Query.ContainsKey("mount"))
            {
                http.Request.QueryString = QueryString.Empty;
            }
        }));
        using var session = context.Session(RegistryTestContext.Insecure(front.Authority, registry.Authority));
        var (baseImage, _) = await RegistryPushPullTests.PushBaseAsync(context, session, registry.Authority, "remote/ubi8/ubi-minimal", 27);
        var baseSource = new RegistryImageSource(session, ImageReference.Parse($"{front.Authority}/remote/ubi8/ubi-minimal:1.0"));
        await baseSource.ResolveAsync(Platform.LinuxAmd64, None);
        var image = context.Derive(baseImage, 28);

        var result = await new ImagePusher(session).PushAsync(image, baseSource, RegistryTestContext.Reference(front.Authority, "local/openshift-mtv/vddk"), ["1"],
            new PushOptions { MaxParallelUploads = 1 }, context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.Equal(0, refusedUploads);
        var pulled = await new RegistryImageSource(session, ImageReference.Parse($"{registry.Authority}/local/openshift-mtv/vddk:1")).ResolveAsync(Platform.LinuxAmd64, None);
        Assert.Equal(image.ManifestBytes, pulled.ManifestBytes);
    }

    /// <summary>
    /// Docker Hub's token endpoint answers 403 "requesting higher privileges than access token allows" for an access
    /// token without write permission (moby/moby#45415), GHCR likewise for a token without write:packages: the
    /// account is fine, its permission is not. VDDK3011 names the account and what it lacks, not a login problem.
    /// </summary>
    [SkippableFact]
    public async Task TokenEndpointRefusingThePushScopeWith403_IsVddk3011_NamingTheAccountAndThePermission()
    {
        const string user = "ci-reader";
        const string password = "s3cret-read-only-token";
        await using var context = new RegistryTestContext(output);
        var tokens = context.Own(await TestTokenServer.StartAsync(Path.Combine(context.Directory, "token"), new Dictionary<string, string> { [user] = password }));
        var toTokens = new ReverseProxyForwarder(new Uri(tokens.Realm));
        var readOnly = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            if (http.Request.Query["scope"].Any(scope => scope!.EndsWith(",push", StringComparison.Ordinal)))
            {
                http.Response.StatusCode = 403;
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync("{\"details\":\"requesting higher privileges than access token allows\"}");
                return;
            }
            await toTokens.ForwardAsync(http);
        }));
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Token = tokens.Settings with { Realm = new Uri(readOnly.BaseUri, "token").AbsoluteUri } }));
        context.Environment[EnvironmentCredentialProvider.PushUserVariable] = user;
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = password;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority, readOnly.Authority));
        var (image, blobs) = context.MakeBase("read-only", 27);

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(registry.Authority, "vddk/read-only"), ["1"], new PushOptions(), context.Log, None));

        Assert.Equal(ErrorCodes.RegistryDenied, error.Code);
        Assert.Contains($"user '{user}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("push on repository 'vddk/read-only'", error.Message, StringComparison.Ordinal);
        Assert.Contains("requesting higher privileges than access token allows", error.Message, StringComparison.Ordinal);
        Assert.Contains("lacks the permission", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Log in again", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(password, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(password, context.Log.AllText, StringComparison.Ordinal);
    }

    /// <summary>The manifest PUT's answer without Docker-Content-Digest, as proxies that drop it give (distribution/distribution#3848).</summary>
    private static Action<HttpContext> DropDigestOfManifestPut(Action<HttpContext>? more = null) => http =>
    {
        if (!HttpMethods.IsPut(http.Request.Method) || !http.Request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal))
        {
            return;
        }
        more?.Invoke(http);
        http.Response.OnStarting(() =>
        {
            http.Response.Headers.Remove("Docker-Content-Digest");
            return Task.CompletedTask;
        });
    };

    /// <summary>
    /// Without Docker-Content-Digest the registry does not say under which digest it stored the manifest: one HEAD by
    /// ours confirms it, and the push completes as it would with the header.
    /// </summary>
    [SkippableFact]
    public async Task ManifestPutAnsweredWithoutDigest_IsConfirmedByItsDigest_AndThePushCompletes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var proxy = context.Own(await ProxyAsync(registry, _ => Task.FromResult(false), DropDigestOfManifestPut()));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
        var (image, blobs) = context.MakeBase("no-digest", 28);

        var result = await new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(proxy.Authority, "vddk/no-digest"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        var pulled = await new RegistryImageSource(session, result.PinnedReference).ResolveAsync(Platform.LinuxAmd64, None);
        Assert.Equal(image.ManifestBytes, pulled.ManifestBytes);
    }

    /// <summary>
    /// A registry that rewrites the manifest (here: stores it re-serialized) behind a proxy that drops the digest
    /// header: the digest the build would report does not exist there. VDDK3005, as when the header names another.
    /// </summary>
    [SkippableFact]
    public async Task ManifestRewrittenByTheRegistry_AndAnsweredWithoutDigest_IsVddk3005()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var forwarder = new ReverseProxyForwarder(registry.BaseUri);
        var proxy = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            DropDigestOfManifestPut()(http);
            if (!HttpMethods.IsPut(http.Request.Method) || !http.Request.Path.Value!.Contains("/manifests/", StringComparison.Ordinal))
            {
                await forwarder.ForwardAsync(http);
                return;
            }
            using var sent = new MemoryStream();
            await http.Request.Body.CopyToAsync(sent);
            var rewritten = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(
                System.Text.Json.JsonDocument.Parse(sent.ToArray()).RootElement, new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
            await forwarder.ForwardAsync(http, request =>
            {
                var content = new ByteArrayContent(rewritten);
                content.Headers.ContentType = request.Content!.Headers.ContentType;
                request.Content = content;
            });
        }));
        using var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, registry.Authority));
        var (image, blobs) = context.MakeBase("rewritten", 29);

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(proxy.Authority, "vddk/rewritten"), ["1"], new PushOptions(), context.Log, None));

        Assert.Equal(ErrorCodes.ManifestDigestMismatch, error.Code);
        Assert.Contains("no Docker-Content-Digest", error.Message, StringComparison.Ordinal);
        Assert.Contains(image.Digest.Value, error.Message, StringComparison.Ordinal);
        // The registry did store something else under the tag: the check is against what it really holds.
        var stored = await session.GetClient(registry.Authority).GetManifestAsync("vddk/rewritten", "1", RegistryPurpose.Pull, None);
        Assert.NotNull(stored);
        Assert.NotEqual(image.Digest, stored.Digest);
    }

    private static void InterlockedMax(ref long target, long value)
    {
        for (var current = Interlocked.Read(ref target); value > current; current = Interlocked.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, current) == current)
            {
                return;
            }
        }
    }
}
