using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.IO;
using VddkBuild.Layers;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Sends the VDDK layer to the target repository while the archive is still being read and checked: an upload
/// session is opened and the candidate layer file is PATCHed into it as it grows. The blob only comes into being when
/// the pusher commits the session (PUT ?digest=) with the layer's final descriptor, after every check has passed and
/// the base is known; refused, failed or never committed, the session is cancelled and the registry keeps nothing.
/// A shortcut only: whatever goes wrong here, the pusher uploads the layer the ordinary way (with its retries), and
/// any real problem with the registry is reported from there.
/// </summary>
public sealed class EarlyLayerUpload : ILayerUploadStarter, IAsyncDisposable
{
    private static readonly TimeSpan CancelTimeout = TimeSpan.FromSeconds(10);

    private readonly RegistryClient _client;
    private readonly string _repository;
    private readonly BlobUploader _uploader;
    private readonly PushOptions _options;
    private readonly IBuildLog _log;
    private readonly CancellationTokenSource _stop;
    private readonly CancellationToken _build;
    private Task<Sent>? _sending;
    private long _length;
    private Task<Digest?> _expected = Task.FromResult<Digest?>(null);
    private Uri? _session;
    private volatile string? _abandoned;
    private bool _committed;
    private Commit? _commit;

    private sealed record Sent(Uri? Location, bool AlreadyPresent);

    /// <summary>A commit started by <see cref="Ready"/>, for the pusher to collect.</summary>
    private sealed record Commit(Descriptor Layer, Task<BlobPushResult?> Outcome);

    public EarlyLayerUpload(RegistrySession session, ImageReference target, PushOptions options, IBuildLog log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        _client = session.GetClient(target);
        _repository = target.Repository;
        _uploader = new BlobUploader(_client, _repository, options, log);
        _options = options;
        _log = log;
        _build = cancellationToken;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    private string Operation => $"Uploading the VDDK layer to {_client.Registry}/{_repository} while it is checked";

    public void Begin(GrowingFile file, long length, Task<Digest?> expectedDigest)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(expectedDigest);
        if (_sending is not null)
        {
            throw new InvalidOperationException("The early upload was already started.");
        }
        (_length, _expected) = (length, expectedDigest);
        // Opened now, while the file is still under the name it is being written to: a small archive may be
        // checked, and its copy renamed, before the upload session is even open.
        var source = file.OpenFollower(length);
        var token = _stop.Token;
        _sending = Task.Run(SendFollowingAsync, CancellationToken.None);

        [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
        async Task<Sent> SendFollowingAsync()
        {
            await using (source.ConfigureAwait(false))
            {
                return await SendAsync(source, length, expectedDigest, token).ConfigureAwait(false);
            }
        }
    }

    public void Abandon(string reason)
    {
        _abandoned ??= reason;
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // already finished
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<Sent> SendAsync(Stream source, long length, Task<Digest?> expectedDigest, CancellationToken ct)
    {
        var push = RegistryRequestContext.Push(_repository);
        // Known beforehand, the digest lets a layer the repository already has go unsent.
        if (await expectedDigest.WaitAsync(ct).ConfigureAwait(false) is { } digest && await _client.BlobExistsOnceAsync(_repository, digest, push, ct).ConfigureAwait(false))
        {
            return new Sent(null, AlreadyPresent: true);
        }
        // Not cut short by Abandon either: a session the registry opened must be known, to be cancelled.
        var session = await _uploader.StartKnownAsync(push, Operation, CancelTimeout).ConfigureAwait(false);
        _session = session.Location;
        ct.ThrowIfCancellationRequested();
        var progress = new TransferProgress(_log, $"VDDK layer -> {_client.Registry}/{_repository}", length);
        // One PATCH for the whole file, unless the registry (or VddkForceChunkedUpload) wants smaller requests.
        var chunk = _options.ForceChunkedUpload ? Math.Max(_options.ChunkSize, 1) : Math.Max(length, 1);
        var location = (await _uploader.SendChunksAsync(session, source, length, chunk, progress, Operation, ct).ConfigureAwait(false)).Location;
        _session = location;
        return new Sent(location, AlreadyPresent: false);
    }

    /// <summary>
    /// The layer passed every check: the session is committed now, in the background, while the image is assembled;
    /// <see cref="TryCommitAsync"/> collects the outcome.
    /// </summary>
    public void Ready(Descriptor layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (_sending is null || _abandoned is not null || Volatile.Read(ref _commit) is not null)
        {
            return;
        }
        Volatile.Write(ref _commit, new Commit(layer, Task.Run(() => CommitAsync(layer, _build), CancellationToken.None)));
    }

    /// <summary>
    /// Makes the bytes sent the blob of <paramref name="layer"/>, if they are that layer: the same length, and the
    /// digest the registry verifies when it closes the session. Null when the early upload cannot give the blob (not
    /// started, abandoned, failed, or refused at the commit): the caller uploads it the ordinary way. When the layer
    /// was <see cref="Ready"/> already, this is the outcome of that commit.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<BlobPushResult?> TryCommitAsync(Descriptor layer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (Volatile.Read(ref _commit) is { } started)
        {
            // The session is committed once, for the layer that was ready; any other layer goes the ordinary way.
            return started.Layer.Digest == layer.Digest && started.Layer.Size == layer.Size
                ? await started.Outcome.WaitAsync(cancellationToken).ConfigureAwait(false)
                : null;
        }
        return await CommitAsync(layer, cancellationToken).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<BlobPushResult?> CommitAsync(Descriptor layer, CancellationToken cancellationToken)
    {
        if (_sending is null || _abandoned is not null)
        {
            return null;
        }
        if (layer.Size != _length || (_expected.IsCompletedSuccessfully && _expected.Result is { } expected && expected != layer.Digest))
        {
            Abandon("the layer is not the file being sent");
            return null;
        }
        var label = $"VDDK layer ({layer.Digest.Hex[..12]})";
        Sent sent;
        try
        {
            sent = await _sending.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            _log.Detail($"{label}: sending it while the archive was checked failed ({Describe(ex)}); uploading it now.");
            return null;
        }
        if (sent.AlreadyPresent)
        {
            _log.Detail($"{label}: already in {_client.Registry}/{_repository}, skipped.");
            return new BlobPushResult(layer, BlobOutcome.Skipped, 0);
        }
        try
        {
            await _uploader.CommitAsync(sent.Location!, layer.Digest, Operation, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is VddkException or TransientRegistryException && !cancellationToken.IsCancellationRequested)
        {
            _log.Detail($"{label}: the registry did not accept the bytes sent while the archive was checked ({Describe(ex)}); uploading it now.");
            return null;
        }
        _committed = true;
        _log.Detail($"{label}: sent while the archive was being checked, committed after the checks passed.");
        return new BlobPushResult(layer, BlobOutcome.Uploaded, layer.Size);
    }

    private static string Describe(Exception ex) => ex is OperationCanceledException ? "stopped" : ex.Message;

    /// <summary>Stops a transfer still running and cancels a session that was not committed.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _commit) is { } commit)
        {
            try
            {
                await commit.Outcome.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The pusher saw (or did not need) it; the session is cancelled below if it is still open.
            }
        }
        if (!_committed)
        {
            Abandon("not committed");
        }
        if (_sending is not null)
        {
            try
            {
                await _sending.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Reported (or irrelevant) already; what is left to do is cancelling the session.
            }
        }
        if (!_committed && _session is { } session)
        {
            using var timeout = new CancellationTokenSource(CancelTimeout);
            try
            {
                await _uploader.CancelQuietlyAsync(session, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The registry expires abandoned sessions by itself.
            }
        }
        _stop.Dispose();
    }
}
