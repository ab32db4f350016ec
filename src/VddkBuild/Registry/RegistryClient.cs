using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// The distribution API of one registry: manifests, blob existence and download, and the raw request path the
/// uploader builds on. Every request goes through the auth handler and a per-request timeout; retryable failures
/// surface as <see cref="TransientRegistryException"/> inside <see cref="RetryPolicy"/>, everything else as a coded
/// <see cref="VddkException"/>. Get instances from <see cref="RegistrySession.GetClient(string)"/>.
/// </summary>
public sealed class RegistryClient
{
    /// <summary>Manifests and error bodies larger than this are refused (the spec suggests 4 MiB for manifests).</summary>
    internal const long MaxBufferedResponse = 8 * 1024 * 1024;

    private const int MaxRedirects = 5;

    private readonly RegistrySession _session;
    private readonly Lazy<Task<Uri>> _baseUri;
    private HttpMessageInvoker? _authenticated;

    private readonly ICredentialProvider _credentials;

    internal RegistryClient(RegistrySession session, string registry, ICredentialProvider? credentials = null)
    {
        _session = session;
        _credentials = credentials ?? session.Credentials;
        Registry = registry;
        ApiAuthority = registry == ImageReference.DockerHub ? ImageReference.DockerHubApiHost : registry;
        Insecure = session.Options.IsInsecure(registry) || session.Options.IsInsecure(ApiAuthority);
        _baseUri = new Lazy<Task<Uri>>(ResolveBaseUriAsync, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The registry as named in references (<c>docker.io</c>, <c>host:port</c>).</summary>
    public string Registry { get; }

    /// <summary>Where requests really go.</summary>
    public string ApiAuthority { get; }

    /// <summary>Plain HTTP and unverified TLS allowed for this registry.</summary>
    public bool Insecure { get; }

    internal RegistrySession Session => _session;

    internal RetryPolicy Retry => _session.Retry;

    /// <summary>The scheme and authority requests go to (https unless insecure and only HTTP answers).</summary>
    public Task<Uri> GetBaseUriAsync(CancellationToken cancellationToken) =>
        _baseUri.Value.IsCompleted ? _baseUri.Value : _baseUri.Value.WaitAsync(cancellationToken);

    // ---------------------------------------------------------------- manifests

    /// <summary>
    /// GETs a manifest or index with the full Accept list. Returns null on 404. When <paramref name="reference"/> is a
    /// digest the content is verified against it (VDDK3005 otherwise).
    /// </summary>
    public Task<ManifestResponse?> GetManifestAsync(string repository, string reference, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        var context = purpose == RegistryPurpose.Push ? RegistryRequestContext.Push(repository) : RegistryRequestContext.Pull(repository);
        var operation = $"Reading manifest {Registry}/{RepositoryReference(repository, reference)}";
        return Retry.ExecuteAsync(operation, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<ManifestResponse?> (_, ct) =>
        {
            // Redirects are followed (SendAsync): a redirector (registry.k8s.io) answers every manifest request with one.
            using var response = await SendAsync(baseUri => ManifestRequest(HttpMethod.Get, baseUri, repository, reference), context, operation, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
            await EnsureSuccessAsync(response, operation, context, ct).ConfigureAwait(false);
            var bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            var computed = Digest.Compute(bytes);
            var header = Digest.TryParse(HeaderValue(response, "Docker-Content-Digest"), out var h) ? h : (Digest?)null;
            if (Digest.TryParse(reference, out var requested) && requested != computed)
            {
                throw new VddkException(ErrorCodes.ManifestDigestMismatch,
                    $"The manifest {Registry}/{repository}@{requested} the registry returned has digest {computed}: the content does not match the digest it was asked for. The registry (or something between) altered it.",
                    $"{Registry}/{repository}@{requested}");
            }
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            return (ManifestResponse?)new ManifestResponse(bytes, mediaType, computed, header);
        }, cancellationToken);
    }

    /// <summary>
    /// PUTs a manifest under a tag or digest with its media type as Content-Type, and checks the registry's
    /// <c>Docker-Content-Digest</c> against the content's digest (VDDK3005 on mismatch).
    /// </summary>
    public Task<Digest> PutManifestAsync(string repository, string reference, string mediaType, byte[] content, CancellationToken cancellationToken)
    {
        var context = RegistryRequestContext.Push(repository);
        var operation = $"Writing manifest {Registry}/{RepositoryReference(repository, reference)}";
        var expected = Digest.Compute(content);
        return Retry.ExecuteAsync(operation, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<Digest> (_, ct) =>
        {
            using var response = await SendAsync(baseUri =>
            {
                var body = new ByteArrayContent(content);
                body.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return new HttpRequestMessage(HttpMethod.Put, ManifestUri(baseUri, repository, reference)) { Content = body };
            }, context, operation, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode && await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false) is var body
                && ManifestFormatRefusal.IsFormatRefusal(response.StatusCode, body))
            {
                // Its own code: the pusher decides whether the image may be sent in another format (ImagePusher).
                var summary = RegistryErrorResponse.Summarize(body);
                var detail = ManifestFormatRefusal.Detail(body) is { } d && !summary.Contains(d, StringComparison.Ordinal) ? $", detail: {d}" : string.Empty;
                throw new VddkException(ErrorCodes.ManifestFormatRefused,
                    $"Registry {Registry} refused a manifest of type {mediaType} for {RepositoryReference(repository, reference)}: HTTP {(int)response.StatusCode} {response.StatusCode}{(summary.Length > 0 ? $" ({summary}{detail})" : detail)}{ManifestFormatRefusal.TagHint(body)}",
                    $"{Registry}/{RepositoryReference(repository, reference)}");
            }
            await EnsureSuccessAsync(response, operation, context, ct).ConfigureAwait(false);
            var header = HeaderValue(response, "Docker-Content-Digest");
            if (header is null)
            {
                await EnsureManifestStoredAsync(repository, reference, expected, context, operation, ct).ConfigureAwait(false);
                return expected;
            }
            if (Digest.TryParse(header, out var other) && other.Algorithm != expected.Algorithm && SameContent(other, content))
            {
                return expected; // the same bytes, named by another algorithm (sha512)
            }
            if (!Digest.TryParse(header, out var stored) || stored != expected)
            {
                throw new VddkException(ErrorCodes.ManifestDigestMismatch,
                    $"The registry stored manifest {Registry}/{RepositoryReference(repository, reference)} under digest {header}, but its content has digest {expected}. The registry rewrote the manifest (for example converted its format); the pushed image would not be the one built. Push to an OCI-conformant registry.",
                    $"{Registry}/{RepositoryReference(repository, reference)}");
            }
            return stored;
        }, cancellationToken);
    }

    /// <summary>
    /// A manifest PUT answered without <c>Docker-Content-Digest</c> (a SHOULD of the spec; some registries, and proxies
    /// in front of them, drop it: distribution/distribution#3848) does not say under which digest the registry stored
    /// the manifest. One HEAD by our digest does: a registry that rewrote it (converted its format, re-serialized the
    /// JSON) does not have it, and the pinned reference the build reports would not pull (VDDK3005). Any answer other
    /// than 404 leaves the push as it is: only a 404 proves the rewrite.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private async Task EnsureManifestStoredAsync(string repository, string reference, Digest expected, RegistryRequestContext context, string operation, CancellationToken ct)
    {
        using var response = await SendAsync(baseUri => ManifestRequest(HttpMethod.Head, baseUri, repository, expected.Value), context, operation, ct).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            throw new VddkException(ErrorCodes.ManifestDigestMismatch,
                $"The registry accepted manifest {Registry}/{RepositoryReference(repository, reference)} without saying under which digest it stored it (no Docker-Content-Digest), and it has no manifest {expected}, the digest of what was sent. The registry rewrote the manifest (for example converted its format); the pushed image would not be the one built. Push to an OCI-conformant registry.",
                $"{Registry}/{RepositoryReference(repository, reference)}");
        }
        if (TransientRegistryException.IsRetryableStatus(response.StatusCode))
        {
            await EnsureSuccessAsync(response, operation, context, ct).ConfigureAwait(false);
        }
        if (!response.IsSuccessStatusCode)
        {
            _session.Log.Detail($"{operation}: the registry sent no Docker-Content-Digest, and answered HTTP {(int)response.StatusCode} when asked for manifest {expected}; taking the push as stored under that digest.");
        }
    }

    /// <summary>
    /// The digest a tag or digest currently names in the repository (HEAD, <c>Docker-Content-Digest</c>), or null when
    /// it is absent or the registry does not say. One attempt, no retries: callers use it as a hint only.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<Digest?> TryGetManifestDigestAsync(string repository, string reference, CancellationToken cancellationToken)
    {
        var operation = $"Checking manifest {Registry}/{RepositoryReference(repository, reference)}";
        using var response = await SendAsync(baseUri => ManifestRequest(HttpMethod.Head, baseUri, repository, reference), RegistryRequestContext.Push(repository), operation, cancellationToken).ConfigureAwait(false);
        return response.IsSuccessStatusCode && Digest.TryParse(HeaderValue(response, "Docker-Content-Digest"), out var digest) ? digest : null;
    }

    /// <summary><c>repository:tag</c>, or <c>repository@digest</c> for a digest (a tag never holds a colon).</summary>
    internal static string RepositoryReference(string repository, string reference) =>
        reference.Contains(':', StringComparison.Ordinal) ? $"{repository}@{reference}" : $"{repository}:{reference}";

    /// <summary>A GET or HEAD of a manifest, accepting every manifest and index media type this client reads.</summary>
    private static HttpRequestMessage ManifestRequest(HttpMethod method, Uri baseUri, string repository, string reference)
    {
        var request = new HttpRequestMessage(method, ManifestUri(baseUri, repository, reference));
        foreach (var mediaType in MediaTypes.ManifestAccept)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mediaType));
        }
        return request;
    }

    private static bool SameContent(Digest digest, byte[] content) => digest.Algorithm switch
    {
        "sha512" => Convert.ToHexStringLower(System.Security.Cryptography.SHA512.HashData(content)) == digest.Value[(digest.Algorithm.Length + 1)..],
        _ => false,
    };

    // ---------------------------------------------------------------- blobs

    /// <summary>HEAD on a blob: true when the repository already has it.</summary>
    public Task<bool> BlobExistsAsync(string repository, Digest digest, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        var context = purpose == RegistryPurpose.Push ? RegistryRequestContext.Push(repository) : RegistryRequestContext.Pull(repository);
        var operation = $"Checking blob {digest.Hex[..12]} in {Registry}/{repository}";
        return Retry.ExecuteAsync(operation, (_, ct) => BlobExistsOnceAsync(repository, digest, context, ct), cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal async Task<bool> BlobExistsOnceAsync(string repository, Digest digest, RegistryRequestContext context, CancellationToken cancellationToken)
    {
        var operation = $"Checking blob {digest.Hex[..12]} in {Registry}/{repository}";
        using var response = await SendAsync(baseUri => new HttpRequestMessage(HttpMethod.Head, BlobUri(baseUri, repository, digest)),
            context, operation, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
        // A registry on S3 (distribution, OpenShift without disableRedirect) answers a HEAD for a blob it found with a
        // redirect to a presigned storage URL (signed for HEAD by distribution), which SendAsync follows as Go clients
        // do: storage that says 404 means the blob is not there after all. Storage that refuses a HEAD (a URL signed
        // only for GET) leaves the registry's word: it redirects only after finding the blob.
        if (!response.IsSuccessStatusCode && response.RequestMessage?.RequestUri is { } answeredBy && !answeredBy.AbsolutePath.EndsWith("/blobs/" + digest, StringComparison.Ordinal))
        {
            _session.Log.Detail($"{operation}: the storage the registry redirected to answered HTTP {(int)response.StatusCode} to HEAD; taking the redirect as the registry's word that the blob exists.");
            return true;
        }
        await EnsureSuccessAsync(response, operation, context, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Opens a blob for streaming: follows redirects (to storage hosts without the registry's Authorization header),
    /// and returns a stream that fails on stalls and verifies size and digest at the end (VDDK2006).
    /// </summary>
    public Task<Stream> OpenBlobAsync(string repository, Descriptor descriptor, CancellationToken cancellationToken) =>
        Retry.ExecuteAsync(DownloadOperation(repository, descriptor), (_, ct) => OpenBlobOnceAsync(repository, descriptor, ct), cancellationToken);

    /// <summary>
    /// Reads a small blob (an image config) whole and verified. Opening and reading are one retried operation: a
    /// connection that breaks while the body is read is retried like one that breaks before the answer.
    /// </summary>
    public Task<byte[]> ReadBlobAsync(string repository, Descriptor descriptor, CancellationToken cancellationToken)
    {
        if (descriptor.Size > MaxBufferedResponse)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid,
                $"Blob {descriptor.Digest} in {Registry}/{repository} claims {descriptor.Size} bytes, more than an image config can sensibly be.", $"{Registry}/{repository}");
        }
        return Retry.ExecuteAsync(DownloadOperation(repository, descriptor), [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<byte[]> (_, ct) =>
        {
            var content = new byte[descriptor.Size];
            await using var stream = await OpenBlobOnceAsync(repository, descriptor, ct).ConfigureAwait(false);
            await stream.ReadExactlyAsync(content, ct).ConfigureAwait(false);
            // Reading to the end makes the stream verify size and digest.
            if (await stream.ReadAsync(new byte[1], ct).ConfigureAwait(false) != 0)
            {
                throw new VddkException(ErrorCodes.BlobDigestMismatch, $"Blob {descriptor.Digest} in {Registry}/{repository} is longer than its descriptor states.", $"{Registry}/{repository}");
            }
            return content;
        }, cancellationToken);
    }

    private string DownloadOperation(string repository, Descriptor descriptor) =>
        $"Downloading blob {descriptor.Digest.Hex[..12]} from {Registry}/{repository}";

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<Stream> OpenBlobOnceAsync(string repository, Descriptor descriptor, CancellationToken ct)
    {
        var context = RegistryRequestContext.Pull(repository);
        var operation = DownloadOperation(repository, descriptor);
        // Redirects (to storage with a presigned URL, a CDN) are followed by SendAsync, without the registry's credentials.
        var response = await SendAsync(baseUri => new HttpRequestMessage(HttpMethod.Get, BlobUri(baseUri, repository, descriptor.Digest)),
            context, operation, ct, bufferResponse: false).ConfigureAwait(false);
        try
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                throw new VddkException(ErrorCodes.RegistryRequestFailed,
                    $"{operation}: the registry does not have this blob although the image's manifest lists it. The image in the registry is incomplete; push it again.",
                    $"{Registry}/{repository}@{descriptor.Digest}");
            }
            await EnsureSuccessAsync(response, operation, context, ct).ConfigureAwait(false);
            var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var guarded = new StallTimeoutStream(body, _session.Options.RequestTimeout, operation);
            return (Stream)new DigestVerifyingStream(guarded, descriptor, $"{Registry}/{repository}", response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private static bool IsRedirect(HttpStatusCode status) =>
        status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    // ---------------------------------------------------------------- sending

    /// <summary>
    /// Sends one authenticated request built against the registry's base URI. With <paramref name="bufferResponse"/>
    /// the body is read (bounded) before returning, within the same timeout. <paramref name="watchdog"/> replaces the
    /// fixed timeout for requests with a streamed body.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal async Task<HttpResponseMessage> SendAsync(
        Func<Uri, HttpRequestMessage> build, RegistryRequestContext context, string operation, CancellationToken cancellationToken,
        bool bufferResponse = true, RequestWatchdog? watchdog = null)
    {
        var baseUri = await GetBaseUriAsync(cancellationToken).ConfigureAwait(false);
        var request = build(baseUri);
        var method = request.Method;
        var replayable = request.Content is null or ByteArrayContent;
        var response = await SendRequestAsync(baseUri, request, context, operation, cancellationToken, bufferResponse, watchdog).ConfigureAwait(false);
        // Redirects: GET and HEAD follow every one; others only 307/308, which keep the method and body, and only when
        // the body can be sent again (a manifest PUT, the POST that opens an upload). A streamed body is never sent
        // twice, so its redirect is reported (EnsureSuccessAsync). Each hop goes through SendRequestAsync: another host
        // gets its own client, never the registry's credentials.
        var anyRedirect = method == HttpMethod.Get || method == HttpMethod.Head;
        for (var hop = 0; response.Headers.Location is { } location
            && (anyRedirect ? IsRedirect(response.StatusCode) : replayable && response.StatusCode is HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect); hop++)
        {
            // The header's own text: a signed storage or CDN URL is requested byte for byte, as upload sessions are.
            var target = UploadLocation.ResolveExactly(response.RequestMessage?.RequestUri ?? baseUri, location.OriginalString);
            response.Dispose();
            if (hop >= MaxRedirects || target.Scheme is not ("http" or "https"))
            {
                throw new VddkException(ErrorCodes.RegistryResponseInvalid,
                    $"{operation}: the registry redirected more than {MaxRedirects} times, or to an address that is not HTTP ({UriForMessages.Format(target)}).", Registry);
            }
            var again = build(baseUri);
            again.RequestUri = target;
            response = await SendRequestAsync(baseUri, again, context, operation, cancellationToken, bufferResponse, watchdog).ConfigureAwait(false);
        }
        return response;
    }

    /// <summary>
    /// Sends a request to wherever its URI points. The registry's credentials go only to the registry itself (its
    /// scheme, host and port; plain HTTP on the same host and port only when the registry is marked insecure). An
    /// upload session or redirect that points at another host goes through that host's own client: no credentials
    /// unless it challenges for them and some are configured for that host, as docker and containerd do. A
    /// registry reached over HTTPS that points at a plain-HTTP address is refused (VDDK3003) unless that address is
    /// marked insecure: neither the registry's credentials nor the blob go out unencrypted on the registry's say-so.
    /// </summary>
    private Task<HttpResponseMessage> SendRequestAsync(
        Uri baseUri, HttpRequestMessage request, RegistryRequestContext context, string operation, CancellationToken cancellationToken,
        bool bufferResponse = true, RequestWatchdog? watchdog = null)
    {
        var target = request.RequestUri!;
        if (IsRegistryEndpoint(target, baseUri))
        {
            request.Options.Set(RegistryRequestContext.Key, context);
            return SendToAsync(GetAuthenticatedInvoker(baseUri), request, operation, cancellationToken, bufferResponse, watchdog);
        }
        if (target.Scheme == Uri.UriSchemeHttp && baseUri.Scheme == Uri.UriSchemeHttps && !_session.Options.IsInsecure(target.Authority))
        {
            request.Dispose();
            throw new VddkException(ErrorCodes.RegistryTlsFailed,
                $"{operation}: registry {Registry}, reached over HTTPS, sent the request on to {UriForMessages.Format(target)}, a plain-HTTP address; it was not followed, so nothing (credentials or data) went out unencrypted. " +
                "This is usually a proxy or load balancer that ends TLS in front of the registry without telling it (set X-Forwarded-Proto: https there, or the registry's own setting for its external URL). " +
                $"If plain HTTP is acceptable, mark {target.Authority} insecure (VddkInsecureRegistries or {RegistryTransportOptions.InsecureRegistriesVariable}).",
                Registry);
        }
        // Another host: its own client (challenges, credentials stored for it by name, TLS verification unless it
        // is marked insecure); the scopes named this registry's repositories, so that host's challenge names its own.
        var foreign = _session.GetForwardedClient(target.Authority);
        request.Options.Set(RegistryRequestContext.Key, new RegistryRequestContext([], context.Purpose));
        return SendToAsync(foreign.GetAuthenticatedInvoker(target), request, operation, cancellationToken, bufferResponse, watchdog);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<HttpResponseMessage> SendToAsync(
        HttpMessageInvoker invoker, HttpRequestMessage request, string operation, CancellationToken cancellationToken,
        bool bufferResponse, RequestWatchdog? watchdog = null)
    {
        using var ownTimeout = watchdog is null ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : null;
        ownTimeout?.CancelAfter(_session.Options.RequestTimeout);
        var token = watchdog?.Token ?? ownTimeout!.Token;
        HttpResponseMessage? response = null;
        try
        {
            response = await invoker.SendAsync(request, token).ConfigureAwait(false);
            // A HEAD answer has no body, but its Content-Length is the blob's size: buffering would refuse large blobs.
            if (bufferResponse && request.Method != HttpMethod.Head)
            {
                if (response.Content.Headers.ContentLength is > MaxBufferedResponse and var length)
                {
                    response.Dispose();
                    throw TooLarge(length);
                }
                await response.Content.LoadIntoBufferAsync(MaxBufferedResponse, token).ConfigureAwait(false);
            }
            return response;
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.ConfigurationLimitExceeded)
        {
            // A body without Content-Length that grew past the limit (the response is there), or headers past .NET's
            // limit (no response yet): no connection failure, and no retry mends it.
            if (response is null)
            {
                throw new VddkException(ErrorCodes.RegistryResponseInvalid,
                    $"Registry {Registry} answered with headers larger than this client accepts ({VddkException.Reason(ex)}), which no registry sends. Check that nothing between this machine and the registry (a proxy, a login page setting many cookies) answers in its place.",
                    Registry, ex);
            }
            response.Dispose();
            throw TooLarge(null, ex);
        }
        catch (Exception ex) when (ex is not VddkException and not TransientRegistryException)
        {
            response?.Dispose();
            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw ex switch
            {
                OperationCanceledException => new TransientRegistryException(
                    $"no answer within {(watchdog?.Timeout ?? _session.Options.RequestTimeout).TotalSeconds:0} s", inner: ex),
                HttpRequestException http => TranslateTransportError(http, request.RequestUri?.Authority ?? ApiAuthority, $"registry {Registry}"),
                IOException io => new TransientRegistryException($"connection broken ({io.Message})", inner: io),
                _ => ex,
            };
        }
        finally
        {
            request.Dispose();
        }
    }

    private VddkException TooLarge(long? length, Exception? inner = null) => new(ErrorCodes.RegistryResponseInvalid,
        $"Registry {Registry} answered with {(length is { } bytes ? $"{bytes} bytes" : "a body")} of more than {MaxBufferedResponse / (1024 * 1024)} MiB where a manifest or an error message was expected (the distribution specification suggests at most 4 MiB for a manifest). Check that the image reference names a container image, and that nothing between this machine and the registry (a proxy, a login page) answers in its place.",
        Registry, inner);

    /// <summary>Turns a transport failure into VDDK3003 (TLS) or a retryable failure (connection).</summary>
    internal static Exception TranslateTransportError(HttpRequestException ex, string authority, string what)
    {
        if (ex.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            return new VddkException(ErrorCodes.RegistryTlsFailed,
                $"The TLS connection to {what} ({authority}) failed: {Innermost(ex).Message} If the registry's certificate comes from a private CA (for example OpenShift's ingress CA), set VddkRegistryCaBundle to a PEM file with that CA, or put it where podman looks for it (/etc/containers/certs.d/{authority}/ca.crt). If the registry serves plain HTTP, mark it insecure (VddkRegistryInsecure=true or {RegistryTransportOptions.InsecureRegistriesVariable}).",
                authority, ex);
        }
        var connectFailed = ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError;
        return new TransientRegistryException(connectFailed ? $"cannot connect to {authority} ({Innermost(ex).Message})" : $"connection to {authority} failed ({Innermost(ex).Message})", connectFailed: connectFailed, inner: ex);
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null)
        {
            ex = ex.InnerException;
        }
        return ex;
    }

    /// <summary>
    /// Throws for a non-success status: retryable statuses as <see cref="TransientRegistryException"/>, 401/403 as
    /// VDDK3002/VDDK3011 naming the scope, others as VDDK3009 quoting the registry's error codes.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    internal async Task EnsureSuccessAsync(HttpResponseMessage response, string operation, RegistryRequestContext context, CancellationToken cancellationToken, bool unauthorizedIsTransient = false)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var status = response.StatusCode;
        var summary = await RegistryErrorResponse.ReadSummaryAsync(response, cancellationToken).ConfigureAwait(false);
        var quoted = summary.Length > 0 ? $" ({summary})" : string.Empty;
        if (TransientRegistryException.IsRetryableStatus(status))
        {
            throw new TransientRegistryException($"HTTP {(int)status} {status}{quoted}", status, RetryAfter.From(response, DateTimeOffset.UtcNow));
        }
        var options = response.RequestMessage?.Options;
        var credential = options is not null && options.TryGetValue(RegistryAuthHandler.UsedCredential, out var used) ? used : null;
        var scheme = options is not null && options.TryGetValue(RegistryAuthHandler.SentScheme, out var sent) ? sent : null;
        if (status == HttpStatusCode.Unauthorized && unauthorizedIsTransient && scheme is not null)
        {
            // A streamed upload cannot be replayed with a fresh token; the whole upload is retried instead.
            throw new TransientRegistryException($"authorization expired during the transfer (HTTP 401){quoted}", status);
        }
        var challengeKnownWhenSent = options is not null && options.TryGetValue(RegistryAuthHandler.UsedCredential, out _);
        var withoutChallenge = options is not null && options.TryGetValue(RegistryAuthHandler.NoChallenge, out var none) && none;
        if (status == HttpStatusCode.Unauthorized && unauthorizedIsTransient && !challengeKnownWhenSent && !withoutChallenge)
        {
            // The first request to this host was a streamed upload: its challenge is known now, and the retried upload
            // carries what it asks for (or fails plainly when nothing is stored for it).
            throw new TransientRegistryException($"{response.RequestMessage?.RequestUri?.Authority} asked for credentials (HTTP 401){quoted}", status);
        }
        if (status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden && response.RequestMessage?.RequestUri is { } sentTo
            && _baseUri.Value.IsCompletedSuccessfully && !IsRegistryEndpoint(sentTo, _baseUri.Value.Result))
        {
            throw new VddkException(status == HttpStatusCode.Unauthorized ? ErrorCodes.RegistryAuthFailed : ErrorCodes.RegistryDenied,
                $"{operation}: registry {Registry} sent this request on to {UriForMessages.Format(sentTo)}, which refused it (HTTP {(int)status}){quoted}. " +
                $"The registry's credentials are only ever sent to the registry itself; {sentTo.Authority} gets only credentials stored under its own name (docker login / podman login {sentTo.Authority}, or a credential helper). " +
                "If that host should not ask for credentials, the registry's storage or upload settings are wrong.",
                Registry);
        }
        if (status == HttpStatusCode.Unauthorized && credential is not null && scheme != "Bearer")
        {
            // Basic credentials (or none applied) refused outright: the user name or secret is wrong.
            throw new VddkException(ErrorCodes.RegistryAuthFailed,
                $"{operation}: registry {Registry} rejected the credentials of user '{credential.UserName}' from {credential.Source}{quoted}. Log in again or correct the secret.",
                Registry);
        }
        if (status == HttpStatusCode.Unauthorized && options is not null && options.TryGetValue(RegistryAuthHandler.NoChallenge, out var unexplained) && unexplained)
        {
            var host = response.RequestMessage?.RequestUri?.Authority ?? Registry;
            throw new VddkException(ErrorCodes.RegistryAuthFailed,
                $"{operation}: {host} answered HTTP 401 without a WWW-Authenticate header naming Basic or Bearer, so there is no way to know how to authenticate{quoted}. " +
                "A proxy in front of the registry probably removed the header or answers for it; check the registry's address (VddkRegistry) and what sits in front of it.",
                Registry);
        }
        if (status == HttpStatusCode.Unauthorized && credential is null)
        {
            throw new VddkException(ErrorCodes.RegistryAuthFailed,
                $"{operation}: registry {Registry} requires authentication and no credentials were found for it{quoted}. Log in to it (podman login / docker login write auth.json / config.json). " +
                $"For the registry pushed to (VddkRegistry) {EnvironmentCredentialProvider.PasswordVariable} also works (user: VddkRegistryUserName or {EnvironmentCredentialProvider.UserVariable}; for OpenShift any user name and a service-account token); it is never sent to another registry, such as a base image's, which takes a login or {EnvironmentCredentialProvider.PullUserVariable}/{EnvironmentCredentialProvider.PullPasswordVariable}.",
                Registry);
        }
        if (status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            var who = credential is null ? "anonymous access" : $"user '{credential.UserName}' (credentials from {credential.Source})";
            throw new VddkException(ErrorCodes.RegistryDenied,
                $"{operation}: registry {Registry} denied {who} the access needed ({context.Describe()}): HTTP {(int)status}{quoted}. Grant that access (OpenShift: system:image-builder in the target namespace to push, system:image-puller to pull) or use other credentials.",
                Registry);
        }
        if (IsRedirect(status))
        {
            var target = response.Headers.Location is { } to ? UriForMessages.Format(to.IsAbsoluteUri ? to : new Uri(response.RequestMessage?.RequestUri ?? new Uri("https://" + ApiAuthority), to)) : "(no Location)";
            throw new VddkException(ErrorCodes.RegistryRequestFailed,
                $"{operation}: registry {Registry} redirected this request (HTTP {(int)status}) to {target}; a redirect of a streamed upload, or one that would change the method, is not followed. Point VddkRegistry at the address the registry redirects to.",
                Registry);
        }
        var hint = status == HttpStatusCode.NotFound && context.Purpose == RegistryPurpose.Push && RepositoryMissing(summary)
            ? $" The repository does not exist, and this registry does not create repositories on push: create it first (AWS ECR: aws ecr create-repository --repository-name {context.Repository}; Harbor, OpenShift: the project; Quay: the organization), or correct VddkRepository."
            : string.Empty;
        throw new VddkException(ErrorCodes.RegistryRequestFailed,
            $"{operation}: registry {Registry} answered HTTP {(int)status} {status}{quoted}.{hint}", Registry);
    }

    /// <summary>
    /// A 404 that means the repository itself is missing: the spec's <c>NAME_UNKNOWN</c> (AWS ECR, which never creates
    /// repositories on push), or Harbor's <c>NOT_FOUND</c> naming a project that does not exist.
    /// </summary>
    internal static bool RepositoryMissing(string errorSummary) =>
        errorSummary.Contains("NAME_UNKNOWN", StringComparison.Ordinal)
        || (errorSummary.Contains("NOT_FOUND", StringComparison.Ordinal) && errorSummary.Contains("project", StringComparison.OrdinalIgnoreCase));

    internal static string? HeaderValue(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault()
        : response.Content.Headers.TryGetValues(name, out var contentValues) ? contentValues.FirstOrDefault() : null;

    internal static Uri ManifestUri(Uri baseUri, string repository, string reference) => new(baseUri, $"/v2/{repository}/manifests/{reference}");

    internal static Uri BlobUri(Uri baseUri, string repository, Digest digest) => new(baseUri, $"/v2/{repository}/blobs/{digest}");

    internal static Uri UploadsUri(Uri baseUri, string repository) => new(baseUri, $"/v2/{repository}/blobs/uploads/");

    /// <summary>The registry itself: its host and port, its scheme (or plain HTTP on them when it is marked insecure).</summary>
    private bool IsRegistryEndpoint(Uri target, Uri baseUri) =>
        target.Host.Equals(baseUri.Host, StringComparison.OrdinalIgnoreCase) && target.Port == baseUri.Port
        && (target.Scheme == baseUri.Scheme || Insecure);

    private HttpMessageInvoker GetAuthenticatedInvoker(Uri baseUri) =>
        LazyInitializer.EnsureInitialized(ref _authenticated, () =>
        {
            var transport = _session.TransportFor(baseUri);
            var auth = new RegistryAuthHandler(transport.Counting, Registry, _credentials, _session.Tokens, _session.TokenClient);
            return new HttpMessageInvoker(auth, disposeHandler: false);
        });

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<Uri> ResolveBaseUriAsync()
    {
        var https = new Uri("https://" + ApiAuthority + "/");
        if (!Insecure)
        {
            return https;
        }
        // Insecure registries may speak TLS (self-signed) or plain HTTP; ask HTTPS first, as podman and the SDK do.
        try
        {
            using var probe = new HttpRequestMessage(HttpMethod.Get, new Uri(https, "/v2/"));
            using var timeout = new CancellationTokenSource(_session.Options.ConnectTimeout);
            using var response = await _session.TransportFor(https).Invoker.SendAsync(probe, timeout.Token).ConfigureAwait(false);
            _session.Log.Detail($"Registry {Registry}: HTTPS answered (certificate not verified: insecure).");
            return https;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
        {
            _session.Log.Detail($"Registry {Registry}: HTTPS failed ({ex.Message}); using plain HTTP (insecure).");
            return new Uri("http://" + ApiAuthority + "/");
        }
    }
}

/// <summary>A manifest or index as the registry returned it.</summary>
public sealed record ManifestResponse(byte[] Bytes, string? ContentType, Digest Digest, Digest? DigestHeader);
