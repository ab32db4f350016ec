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

    internal RegistryClient(RegistrySession session, string registry)
    {
        _session = session;
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
        var operation = $"Reading manifest {Registry}/{repository}:{reference}";
        return Retry.ExecuteAsync(operation, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<ManifestResponse?> (_, ct) =>
        {
            using var response = await SendAsync(baseUri =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, ManifestUri(baseUri, repository, reference));
                foreach (var mediaType in MediaTypes.ManifestAccept)
                {
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mediaType));
                }
                return request;
            }, context, operation, ct).ConfigureAwait(false);
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
        var operation = $"Writing manifest {Registry}/{repository}:{reference}";
        var expected = Digest.Compute(content);
        return Retry.ExecuteAsync(operation, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<Digest> (_, ct) =>
        {
            using var response = await SendAsync(baseUri =>
            {
                var body = new ByteArrayContent(content);
                body.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return new HttpRequestMessage(HttpMethod.Put, ManifestUri(baseUri, repository, reference)) { Content = body };
            }, context, operation, ct).ConfigureAwait(false);
            await EnsureSuccessAsync(response, operation, context, ct).ConfigureAwait(false);
            var header = HeaderValue(response, "Docker-Content-Digest");
            if (header is null)
            {
                return expected;
            }
            if (!Digest.TryParse(header, out var stored) || stored != expected)
            {
                throw new VddkException(ErrorCodes.ManifestDigestMismatch,
                    $"The registry stored manifest {Registry}/{repository}:{reference} under digest {header}, but its content has digest {expected}. The registry rewrote the manifest (for example converted its format); the pushed image would not be the one built. Push to an OCI-conformant registry.",
                    $"{Registry}/{repository}:{reference}");
            }
            return stored;
        }, cancellationToken);
    }

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
        if (IsRedirect(response.StatusCode))
        {
            // A registry on S3 (distribution, OpenShift without disableRedirect) answers a HEAD for a blob it found
            // with a redirect to a presigned storage URL; it only redirects after finding the blob.
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
        var response = await SendBlobGetAsync(repository, descriptor.Digest, context, operation, ct).ConfigureAwait(false);
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

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<HttpResponseMessage> SendBlobGetAsync(string repository, Digest digest, RegistryRequestContext context, string operation, CancellationToken cancellationToken)
    {
        var response = await SendAsync(baseUri => new HttpRequestMessage(HttpMethod.Get, BlobUri(baseUri, repository, digest)),
            context, operation, cancellationToken, bufferResponse: false).ConfigureAwait(false);
        var origin = (await GetBaseUriAsync(cancellationToken).ConfigureAwait(false)).GetLeftPart(UriPartial.Authority);
        for (var hop = 0; IsRedirect(response.StatusCode); hop++)
        {
            var location = response.Headers.Location;
            var from = response.RequestMessage?.RequestUri;
            response.Dispose();
            if (location is null || from is null || hop >= MaxRedirects)
            {
                throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"{operation}: the registry redirected without a usable Location (or more than {MaxRedirects} times).", Registry);
            }
            var target = location.IsAbsoluteUri ? location : new Uri(from, location);
            if (target.GetLeftPart(UriPartial.Authority).Equals(origin, StringComparison.OrdinalIgnoreCase))
            {
                response = await SendAsync(_ => new HttpRequestMessage(HttpMethod.Get, target), context, operation, cancellationToken, bufferResponse: false).ConfigureAwait(false);
            }
            else
            {
                // Storage (S3 presigned URL, CDN): its own signature authorizes; the registry's token must not leak there.
                response = await SendToAsync(_session.TransportFor(target).Invoker, new HttpRequestMessage(HttpMethod.Get, target), operation, cancellationToken, bufferResponse: false).ConfigureAwait(false);
            }
        }
        return response;
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
        request.Options.Set(RegistryRequestContext.Key, context);
        return await SendToAsync(GetAuthenticatedInvoker(baseUri), request, operation, cancellationToken, bufferResponse, watchdog).ConfigureAwait(false);
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
                await response.Content.LoadIntoBufferAsync(MaxBufferedResponse, token).ConfigureAwait(false);
            }
            return response;
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

    /// <summary>Turns a transport failure into VDDK3003 (TLS) or a retryable failure (connection).</summary>
    internal static Exception TranslateTransportError(HttpRequestException ex, string authority, string what)
    {
        if (ex.HttpRequestError == HttpRequestError.SecureConnectionError)
        {
            return new VddkException(ErrorCodes.RegistryTlsFailed,
                $"The TLS connection to {what} ({authority}) failed: {Innermost(ex).Message} If the registry's certificate comes from a private CA (for example OpenShift's ingress CA), set VddkRegistryCaBundle to a PEM file with that CA. If the registry serves plain HTTP, mark it insecure (VddkRegistryInsecure=true or {RegistryTransportOptions.InsecureRegistriesVariable}).",
                authority, ex);
        }
        var connectFailed = ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError;
        return new TransientRegistryException($"{(connectFailed ? "cannot connect to" : "connection to")} {authority} failed ({Innermost(ex).Message})", connectFailed: connectFailed, inner: ex);
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
        if (status == HttpStatusCode.Unauthorized && unauthorizedIsTransient)
        {
            // A streamed upload cannot be replayed with a fresh token; the whole upload is retried instead.
            throw new TransientRegistryException($"authorization expired during the transfer (HTTP 401){quoted}", status);
        }
        var scheme = options is not null && options.TryGetValue(RegistryAuthHandler.SentScheme, out var sent) ? sent : null;
        if (status == HttpStatusCode.Unauthorized && credential is not null && scheme != "Bearer")
        {
            // Basic credentials (or none applied) refused outright: the user name or secret is wrong.
            throw new VddkException(ErrorCodes.RegistryAuthFailed,
                $"{operation}: registry {Registry} rejected the credentials of user '{credential.UserName}' from {credential.Source}{quoted}. Log in again or correct the secret.",
                Registry);
        }
        if (status == HttpStatusCode.Unauthorized && credential is null)
        {
            var variables = context.Purpose == RegistryPurpose.Push
                ? $"{EnvironmentCredentialProvider.PushUserVariable}/{EnvironmentCredentialProvider.PushPasswordVariable}"
                : $"{EnvironmentCredentialProvider.PullUserVariable}/{EnvironmentCredentialProvider.PullPasswordVariable}";
            throw new VddkException(ErrorCodes.RegistryAuthFailed,
                $"{operation}: registry {Registry} requires authentication and no credentials were found{quoted}. Log in (podman login / docker login writes auth.json / config.json), or set {variables}; for OpenShift use any user name and a service-account token as password.",
                Registry);
        }
        if (status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            var who = credential is null ? "anonymous access" : $"user '{credential.UserName}' (credentials from {credential.Source})";
            throw new VddkException(ErrorCodes.RegistryDenied,
                $"{operation}: registry {Registry} denied {who} the access needed ({context.Describe()}): HTTP {(int)status}{quoted}. Grant that access (OpenShift: system:image-builder in the target namespace to push, system:image-puller to pull) or use other credentials.",
                Registry);
        }
        throw new VddkException(ErrorCodes.RegistryRequestFailed,
            $"{operation}: registry {Registry} answered HTTP {(int)status} {status}{quoted}.", Registry);
    }

    internal static string? HeaderValue(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault()
        : response.Content.Headers.TryGetValues(name, out var contentValues) ? contentValues.FirstOrDefault() : null;

    internal static Uri ManifestUri(Uri baseUri, string repository, string reference) => new(baseUri, $"/v2/{repository}/manifests/{reference}");

    internal static Uri BlobUri(Uri baseUri, string repository, Digest digest) => new(baseUri, $"/v2/{repository}/blobs/{digest}");

    internal static Uri UploadsUri(Uri baseUri, string repository) => new(baseUri, $"/v2/{repository}/blobs/uploads/");

    private HttpMessageInvoker GetAuthenticatedInvoker(Uri baseUri) =>
        LazyInitializer.EnsureInitialized(ref _authenticated, () =>
        {
            var transport = _session.TransportFor(baseUri);
            var auth = new RegistryAuthHandler(transport.Counting, Registry, _session.Credentials, _session.Tokens, _session.TokenClient);
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
