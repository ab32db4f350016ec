using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Puts one blob into a repository: HEAD (present: skip), cross-repository mount when a source repository on the
/// same registry is known, else POST + monolithic PUT with the content streamed, and chunked PATCHes when the
/// registry refuses a monolithic body. The whole sequence is one retryable operation: a transfer that broke midway
/// starts again from a HEAD and a fresh POST.
/// </summary>
internal sealed class BlobUploader(RegistryClient client, string repository, PushOptions options, IBuildLog log)
{
    internal sealed record UploadSession(Uri Location, long MinChunkLength);

    /// <summary>PATCH size: <see cref="PushOptions.ChunkSize"/>, lowered for the whole push when a proxy refuses large bodies.</summary>
    private long _chunkSize = options.ChunkSize;

    /// <summary>The smallest request body whose connection broke before any answer (long.MaxValue: none yet).</summary>
    private long _smallestBrokenBody = long.MaxValue;

    /// <summary>1 once the same body size broke twice: a proxy closes connections on bodies over a limit.</summary>
    private int _bodyLimitByClose;

    /// <summary>1 once a body broke: later bodies are sent with <c>Expect: 100-continue</c>, so a refusal comes before them.</summary>
    private int _askBeforeBodies;

    /// <summary>1 once the way to the registry answered <c>Expect: 100-continue</c> with 417: bodies go without asking.</summary>
    private int _expectationRefused;

    public Task<BlobPushResult> PushAsync(Descriptor blob, string label, Func<CancellationToken, Task<Stream>> open, string? mountFrom, CancellationToken cancellationToken)
    {
        var operation = $"Uploading {label} ({blob.Digest.Hex[..12]}) to {client.Registry}/{repository}";
        var progress = new TransferProgress(log, $"{label} -> {client.Registry}/{repository}", blob.Size);
        return client.Retry.ExecuteAsync(operation, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<BlobPushResult> (_, ct) =>
        {
            progress.Restart();
            var push = RegistryRequestContext.Push(repository);
            if (await client.BlobExistsOnceAsync(repository, blob.Digest, push, ct).ConfigureAwait(false))
            {
                log.Detail($"{label} ({blob.Digest.Hex[..12]}): already in {client.Registry}/{repository}, skipped.");
                return new BlobPushResult(blob, BlobOutcome.Skipped, 0);
            }

            UploadSession? session = null;
            if (mountFrom is not null && options.AllowMount)
            {
                (var mounted, session) = await TryMountAsync(blob, mountFrom, operation, ct).ConfigureAwait(false);
                if (mounted)
                {
                    log.Detail($"{label} ({blob.Digest.Hex[..12]}): mounted from {mountFrom}.");
                    return new BlobPushResult(blob, BlobOutcome.Mounted, 0);
                }
            }

            var clock = Stopwatch.StartNew();
            session ??= await StartAsync(push, operation, ct).ConfigureAwait(false);
            var done = !options.ForceChunkedUpload
                && await TryPutMonolithicAsync(session, blob, open, progress, operation, ct).ConfigureAwait(false);
            if (!done)
            {
                if (!options.ForceChunkedUpload)
                {
                    log.Detail($"{operation}: the registry refused a single-request upload; uploading in chunks.");
                    await CancelQuietlyAsync(session, ct).ConfigureAwait(false);
                    progress.Restart();
                    session = await StartAsync(push, operation, ct).ConfigureAwait(false);
                }
                // A proxy in front of the registry may cap request bodies below the chunk size (nginx's
                // client_max_body_size is 1 MiB unless raised): smaller chunks get past it.
                for (var chunkSize = Math.Max(Interlocked.Read(ref _chunkSize), 1); ; )
                {
                    var refused = await PutChunkedAsync(session, blob, open, chunkSize, progress, operation, ct).ConfigureAwait(false);
                    if (refused is null)
                    {
                        break;
                    }
                    await CancelQuietlyAsync(session, ct).ConfigureAwait(false);
                    var smallest = Math.Max(MinChunkSize, session.MinChunkLength);
                    if (refused.Length <= smallest && refused.ClosedWithoutAnswer is { } closed)
                    {
                        // Not proven to be a limit (an unstable network breaks connections too): an ordinary, bounded retry.
                        throw new TransientRegistryException($"{VddkException.Reason(closed)}, even for a chunk of {refused.Length} bytes; {BodyLimitHint}", inner: closed);
                    }
                    if (refused.Length <= smallest)
                    {
                        throw new VddkException(ErrorCodes.RegistryRequestFailed,
                            $"{operation}: registry {client.Registry}, or a proxy in front of it, refused a request body of {refused.Length} bytes (HTTP 413 Request Entity Too Large), even in the smallest chunks this uploads. " +
                            "Raise the request body limit of the proxy (nginx: client_max_body_size 0 for the registry's location; other proxies have a similar setting), as pushing container images needs.",
                            client.Registry);
                    }
                    var smaller = Math.Max(smallest, Math.Min(chunkSize, refused.Length) / ChunkShrinkFactor);
                    var how = refused.ClosedWithoutAnswer is null ? "(HTTP 413)" : "by closing the connection before answering, again";
                    log.Info($"{operation}: registry {client.Registry}, or a proxy in front of it, refused a request body of {refused.Length} bytes {how}; uploading in chunks of {smaller} bytes.");
                    chunkSize = smaller;
                    // The other blobs of this push start from what got past the limit.
                    Interlocked.Exchange(ref _chunkSize, Math.Min(Interlocked.Read(ref _chunkSize), smaller));
                    progress.Restart();
                    session = await StartAsync(push, operation, ct).ConfigureAwait(false);
                }
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(2))
            {
                log.Info($"{label}: uploaded {TransferProgress.Megabytes(blob.Size)} in {clock.Elapsed.TotalSeconds:0.0} s ({blob.Size / clock.Elapsed.TotalSeconds / (1024 * 1024):0.0} MB/s).");
            }
            return new BlobPushResult(blob, BlobOutcome.Uploaded, blob.Size);
        }, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<(bool Mounted, UploadSession? Session)> TryMountAsync(Descriptor blob, string from, string operation, CancellationToken ct)
    {
        var context = RegistryRequestContext.Mount(repository, from);
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(
                baseUri => new HttpRequestMessage(HttpMethod.Post,
                    new Uri(RegistryClient.UploadsUri(baseUri, repository), $"?mount={Uri.EscapeDataString(blob.Digest.Value)}&from={Uri.EscapeDataString(from)}")),
                context, operation, ct).ConfigureAwait(false);
        }
        catch (VddkException ex) when (ex.Code is ErrorCodes.RegistryAuthFailed or ErrorCodes.RegistryDenied)
        {
            // A token endpoint may refuse the combined scope (pull on the source too) that it would grant without
            // the source: the mount is only a shortcut, so upload instead.
            log.Detail($"{operation}: no token for mounting from {from} ({ex.Message}); uploading instead.");
            return (false, null);
        }
        using var _ = response;
        if (response.StatusCode == HttpStatusCode.Created)
        {
            return (true, null);
        }
        if (response.StatusCode == HttpStatusCode.Accepted)
        {
            // The registry could not mount (no access to the source, blob unknown) and opened an ordinary upload.
            return (false, SessionFrom(response));
        }
        if (TransientRegistryException.IsRetryableStatus(response.StatusCode))
        {
            await client.EnsureSuccessAsync(response, operation, context, ct).ConfigureAwait(false);
        }
        // Anything else (e.g. a registry that rejects the mount parameters): fall back to a plain upload.
        log.Detail($"{operation}: mount from {from} answered HTTP {(int)response.StatusCode}; uploading instead.");
        return (false, null);
    }

    /// <summary>
    /// Opens an upload session for a transfer that may be stopped before it is committed (a layer or base layer sent
    /// while the archive is read): bounded by a timeout, not by the build's cancellation, because a session the
    /// registry opened must be known to be cancelled.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal async Task<UploadSession> StartKnownAsync(RegistryRequestContext context, string operation, TimeSpan timeout)
    {
        using var opening = new CancellationTokenSource(timeout);
        return await StartAsync(context, operation, opening.Token).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal async Task<UploadSession> StartAsync(RegistryRequestContext context, string operation, CancellationToken ct)
    {
        using var response = await client.SendAsync(
            baseUri => new HttpRequestMessage(HttpMethod.Post, RegistryClient.UploadsUri(baseUri, repository)),
            context, operation, ct).ConfigureAwait(false);
        await client.EnsureSuccessAsync(response, operation, context, ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid,
                $"{operation}: starting an upload answered HTTP {(int)response.StatusCode} instead of 202 Accepted.", client.Registry);
        }
        return SessionFrom(response);
    }

    private static UploadSession SessionFrom(HttpResponseMessage response)
    {
        var minimum = long.TryParse(RegistryClient.HeaderValue(response, "OCI-Chunk-Min-Length"), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0;
        return new UploadSession(UploadLocation.Resolve(response), minimum);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<bool> TryPutMonolithicAsync(UploadSession session, Descriptor blob, Func<CancellationToken, Task<Stream>> open, TransferProgress progress, string operation, CancellationToken ct)
    {
        var context = RegistryRequestContext.Push(repository);
        using var watchdog = new RequestWatchdog(client.Session.Options.RequestTimeout, ct);
        await using var source = await open(ct).ConfigureAwait(false);
        var body = new StreamContent(new ProgressReadStream(source, progress, watchdog), 81920);
        body.Headers.ContentLength = blob.Size;
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        HttpResponseMessage response;
        try
        {
            response = await SendBodyAsync(
                _ => new HttpRequestMessage(HttpMethod.Put, UploadLocation.WithDigest(session.Location, blob.Digest)) { Content = body },
                blob.Size, context, operation, watchdog, ct).ConfigureAwait(false);
        }
        catch (BodyRefusedException)
        {
            // Closed again at this size before any answer, as a proxy does for bodies over its limit: chunks may pass.
            return false;
        }
        using var _ = response;
        if (response.StatusCode is HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.RequestedRangeNotSatisfiable
            or HttpStatusCode.MethodNotAllowed or HttpStatusCode.NotImplemented or HttpStatusCode.LengthRequired)
        {
            return false;
        }
        if (response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound
            && RefusesSingleRequestUploads(await RegistryErrorResponse.ReadSummaryAsync(response, ct).ConfigureAwait(false)))
        {
            // Registries without single-request uploads (older Pulp, some proxies) answer with an upload error
            // rather than a status of its own. A digest or size error is not this: it is reported as it is.
            return false;
        }
        await client.EnsureSuccessAsync(response, operation, context, ct, unauthorizedIsTransient: true).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// True for the answers to a refused single-request PUT that chunks may get past: the spec's upload errors
    /// (<c>BLOB_UPLOAD_INVALID</c>, <c>BLOB_UPLOAD_UNKNOWN</c>, <c>UNSUPPORTED</c>) or no error code at all.
    /// </summary>
    internal static bool RefusesSingleRequestUploads(string errorSummary) =>
        errorSummary.Length == 0 || errorSummary.StartsWith('"')
        || errorSummary.Contains("BLOB_UPLOAD_INVALID", StringComparison.Ordinal)
        || errorSummary.Contains("BLOB_UPLOAD_UNKNOWN", StringComparison.Ordinal)
        || errorSummary.Contains("UNSUPPORTED", StringComparison.Ordinal);

    /// <summary>Chunks are never made smaller than this when a proxy refuses large bodies (the .NET SDK's default chunk).</summary>
    internal const long MinChunkSize = 64 * 1024;

    private const long ChunkShrinkFactor = 4;

    /// <summary>
    /// Uploads the blob in chunks of <paramref name="chunkSize"/> and commits it. Returns null when done, or the chunk
    /// that was refused (nothing committed: the caller retries with smaller chunks).
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<RefusedChunk?> PutChunkedAsync(UploadSession session, Descriptor blob, Func<CancellationToken, Task<Stream>> open, long chunkSize, TransferProgress progress, string operation, CancellationToken ct)
    {
        ChunkedTransfer sent;
        await using (var source = await open(ct).ConfigureAwait(false))
        {
            try
            {
                sent = await SendChunksAsync(session, source, blob.Size, chunkSize, progress, operation, ct).ConfigureAwait(false);
            }
            catch (BodyRefusedException refused)
            {
                return new RefusedChunk(refused.Length, refused.ClosedWithoutAnswer);
            }
        }
        try
        {
            await CommitAsync(sent.Location, blob.Digest, operation, ct).ConfigureAwait(false);
        }
        catch (VddkException ex) when (sent.RangeDisagreement is { } disagreement && ex.Code == ErrorCodes.RegistryRequestFailed)
        {
            // The registry had acknowledged fewer bytes than were sent, and now refuses the blob: start over.
            throw new TransientRegistryException($"{disagreement}, and then refused to commit the upload ({VddkException.Reason(ex)})", inner: ex);
        }
        return null;
    }

    /// <summary>Where a chunked upload continues, and what the registry's Range said if it disagreed with what was sent.</summary>
    internal sealed record ChunkedTransfer(Uri Location, string? RangeDisagreement);

    /// <summary>
    /// A chunk a proxy refused: with 413, or (<see cref="ClosedWithoutAnswer"/>) by closing the connection before any
    /// answer at a size that broke before.
    /// </summary>
    private sealed record RefusedChunk(long Length, TransientRegistryException? ClosedWithoutAnswer);

    /// <summary>A request body refused (413, or closed without an answer at a size that broke before): a proxy caps request bodies.</summary>
    private sealed class BodyRefusedException(long length, TransientRegistryException? closedWithoutAnswer = null)
        : Exception($"a request body of {length} bytes was refused", closedWithoutAnswer)
    {
        public long Length { get; } = length;

        public TransientRegistryException? ClosedWithoutAnswer { get; } = closedWithoutAnswer;
    }

    private const string BodyLimitHint =
        "a proxy that closes the connection on request bodies over its limit (nginx's client_max_body_size answers 413 and closes before reading the body) does this: raise that limit for the registry (nginx: client_max_body_size 0)";

    /// <summary>
    /// Sends a request with a body of <paramref name="length"/> bytes. A proxy that refuses a body over its limit
    /// (nginx's <c>client_max_body_size</c>) answers 413 with <c>Connection: close</c> before reading it and closes:
    /// .NET, still sending, then mostly sees a broken pipe or a reset, never the 413. The first such break is an
    /// ordinary transient failure (retried), after which every body is sent with <c>Expect: 100-continue</c>, so that
    /// a refusal arrives, readable, before the body; a break without an answer at a size that already broke (or any,
    /// once that happened) is <see cref="BodyRefusedException"/>: the caller treats it as a refused size, as a 413.
    /// A 417 to the expectation (a proxy that does not take it) is a transient failure, and no later body asks first.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<HttpResponseMessage> SendBodyAsync(
        Func<Uri, HttpRequestMessage> build, long length, RegistryRequestContext context, string operation, RequestWatchdog watchdog, CancellationToken ct)
    {
        var askFirst = Volatile.Read(ref _askBeforeBodies) == 1 && Volatile.Read(ref _expectationRefused) == 0;
        HttpResponseMessage response;
        try
        {
            response = await client.SendAsync(baseUri =>
            {
                var request = build(baseUri);
                request.Headers.ExpectContinue = askFirst ? true : null;
                return request;
            }, context, operation, ct, watchdog: watchdog).ConfigureAwait(false);
        }
        catch (TransientRegistryException broken) when (ClosedWithoutAnswer(broken) && !ct.IsCancellationRequested)
        {
            Volatile.Write(ref _askBeforeBodies, 1);
            if (Volatile.Read(ref _bodyLimitByClose) == 1 || length >= Interlocked.Read(ref _smallestBrokenBody))
            {
                Volatile.Write(ref _bodyLimitByClose, 1);
                throw new BodyRefusedException(length, broken);
            }
            for (var smallest = Interlocked.Read(ref _smallestBrokenBody);
                length < smallest && Interlocked.CompareExchange(ref _smallestBrokenBody, length, smallest) != smallest;
                smallest = Interlocked.Read(ref _smallestBrokenBody))
            {
            }
            throw new TransientRegistryException($"{broken.Message} while sending a request body of {length} bytes", inner: broken);
        }
        if (askFirst && response.StatusCode == HttpStatusCode.ExpectationFailed)
        {
            // A proxy that does not take expectations (squid 2.x, HTTP/1.0 proxies, some set to refuse them) answers 417
            // without reading the body: the body goes again, as an ordinary retry, and no later body asks first.
            response.Dispose();
            Volatile.Write(ref _expectationRefused, 1);
            throw new TransientRegistryException($"registry {client.Registry}, or a proxy in front of it, refused 'Expect: 100-continue' (HTTP 417 Expectation Failed); sending request bodies without it");
        }
        return response;
    }

    /// <summary>The connection broke (reset, broken pipe, closed) with no answer at all: not a timeout, not a failed connect.</summary>
    private static bool ClosedWithoutAnswer(TransientRegistryException ex) =>
        ex.Status is null && !ex.ConnectFailed && ex.InnerException is HttpRequestException or IOException;

    /// <summary>
    /// PATCHes <paramref name="length"/> bytes of <paramref name="source"/> into the session in chunks of
    /// <paramref name="chunkSize"/> (raised to the registry's minimum), each with its Content-Range, and returns where
    /// the session continues. Nothing becomes a blob until <see cref="CommitAsync"/>, where the registry checks the
    /// digest: a <c>Range</c> answer that disagrees with the bytes sent is noted, not trusted (AWS ECR's stays at the
    /// first chunk's end, some registries give the current chunk's range alone).
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal async Task<ChunkedTransfer> SendChunksAsync(UploadSession session, Stream source, long length, long chunkSize, TransferProgress progress, string operation, CancellationToken ct)
    {
        string? disagreement = null;
        var context = RegistryRequestContext.Push(repository);
        chunkSize = Math.Max(chunkSize, session.MinChunkLength);
        var location = session.Location;
        for (long offset = 0; offset < length;)
        {
            var size = Math.Min(chunkSize, length - offset);
            var end = offset + size - 1;
            using var watchdog = new RequestWatchdog(client.Session.Options.RequestTimeout, ct);
            var body = new StreamContent(new ProgressReadStream(new BoundedReadStream(source, size), progress, watchdog), 81920);
            body.Headers.ContentLength = size;
            body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            body.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{end}");
            var chunkUri = location;
            using var response = await SendBodyAsync(
                _ => new HttpRequestMessage(HttpMethod.Patch, chunkUri) { Content = body },
                size, context, operation, watchdog, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                // The session and our offset disagree; the registry's view cannot be trusted to resume a stream we
                // cannot rewind, so the upload starts over.
                throw new TransientRegistryException($"the registry rejected chunk {offset}-{end} (HTTP 416)", response.StatusCode);
            }
            if (response.StatusCode == HttpStatusCode.RequestEntityTooLarge)
            {
                throw new BodyRefusedException(size);
            }
            await client.EnsureSuccessAsync(response, operation, context, ct, unauthorizedIsTransient: true).ConfigureAwait(false);
            var range = RegistryClient.HeaderValue(response, "Range");
            if (range is not null && !range.EndsWith("-" + end.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))
            {
                disagreement ??= $"the registry acknowledged range {range} after chunk {offset}-{end}";
                log.Detail($"{operation}: the registry acknowledged range {range} after chunk {offset}-{end}; continuing (the digest is checked when the upload is committed).");
            }
            if (response.Headers.Location is not null)
            {
                location = UploadLocation.Resolve(response);
            }
            offset += size;
        }
        return new ChunkedTransfer(location, disagreement);
    }

    /// <summary>Closes an upload session whose bytes were all sent: the registry checks them against the digest and keeps the blob.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    internal async Task CommitAsync(Uri location, Digest digest, string operation, CancellationToken ct)
    {
        var context = RegistryRequestContext.Push(repository);
        using var final = await client.SendAsync(
            _ => new HttpRequestMessage(HttpMethod.Put, UploadLocation.WithDigest(location, digest)),
            context, operation, ct).ConfigureAwait(false);
        await client.EnsureSuccessAsync(final, operation, context, ct, unauthorizedIsTransient: true).ConfigureAwait(false);
    }

    private Task CancelQuietlyAsync(UploadSession session, CancellationToken ct) => CancelQuietlyAsync(session.Location, ct);

    /// <summary>Ends an upload session without a blob (best effort: an abandoned session also expires on its own).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    internal async Task CancelQuietlyAsync(Uri location, CancellationToken ct)
    {
        try
        {
            using var response = await client.SendAsync(_ => new HttpRequestMessage(HttpMethod.Delete, location),
                RegistryRequestContext.Push(repository), "Cancelling upload", ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TransientRegistryException or VddkException)
        {
            // A session left open expires on the registry side; nothing depends on this.
        }
    }
}
