using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Copies the base image's layers to the target repository while the archive is still being read: as soon as the
/// base is resolved and usable, every layer the target lacks gets an upload session, and the source's bytes are
/// streamed into it (PATCH). A blob only comes into being when the pusher commits the session (PUT ?digest=), after
/// the VDDK layer and the image passed every check; a refused archive, a failed build or a cancellation cancels the
/// sessions and the registry keeps nothing. A base on the target's own registry is not copied here: the pusher mounts
/// it. A shortcut only: whatever goes wrong here, the pusher copies the layer the ordinary way (with its retries), and
/// any real problem with either registry is reported from there.
/// </summary>
public sealed class EarlyBaseCopy : IBaseCopyStarter, IAsyncDisposable
{
    private static readonly TimeSpan CancelTimeout = TimeSpan.FromSeconds(10);

    private readonly RegistryClient _client;
    private readonly ImageReference _target;
    private readonly BlobUploader _uploader;
    private readonly PushOptions _options;
    private readonly IBuildLog _log;
    private readonly CancellationTokenSource _stop;
    private readonly Dictionary<Digest, Copy> _copies = [];
    private readonly Lock _gate = new();
    private SemaphoreSlim? _slots;
    private bool _begun;
    private bool _disposed;

    private sealed record Sent(Uri? Location, bool AlreadyPresent);

    /// <summary>One base layer on its way: the transfer, and the session it uses while that is not committed.</summary>
    private sealed class Copy(Descriptor blob, string label)
    {
        public Descriptor Blob { get; } = blob;

        public string Label { get; } = label;

        public Task<Sent> Sending { get; set; } = Task.FromResult(new Sent(null, false));

        public volatile Uri? Session;

        public volatile bool Committed;
    }

    public EarlyBaseCopy(RegistrySession session, ImageReference target, PushOptions options, IBuildLog log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        _client = session.GetClient(target);
        _target = target;
        _uploader = new BlobUploader(_client, target.Repository, options, log);
        _options = options;
        _log = log;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    private string Operation(Copy copy) => $"Copying {copy.Label} ({copy.Blob.Digest.Hex[..12]}) to {_client.Registry}/{_target.Repository} while the archive is read";

    public void Begin(SourceImage baseImage, IImageSource source)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        ArgumentNullException.ThrowIfNull(source);
        lock (_gate)
        {
            if (_begun || _stop.IsCancellationRequested)
            {
                return;
            }
            _begun = true;
            if (_options.AllowMount && ImagePusher.MountSource(source, _target) is { } mountFrom)
            {
                _log.Detail($"The base's layers are on {_client.Registry} already ({mountFrom}): they are mounted when the image is pushed, not copied while the archive is read.");
                return;
            }
            // The same bound as the pusher's; the VDDK layer's early upload comes on top, as its one transfer.
            _slots = new SemaphoreSlim(Math.Clamp(_options.MaxParallelUploads, 1, 16));
            var layers = baseImage.Layers;
            var token = _stop.Token;
            // Largest first, as the pusher orders them: the long transfer starts at once.
            foreach (var i in Enumerable.Range(0, layers.Count).OrderByDescending(i => layers[i].Size))
            {
                var layer = layers[i];
                if (_copies.ContainsKey(layer.Digest))
                {
                    continue;
                }
                var copy = new Copy(layer, $"base layer {i + 1}/{layers.Count}");
                _copies.Add(layer.Digest, copy);
                copy.Sending = Task.Run(() => SendAsync(copy, source, token), CancellationToken.None);
            }
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<Sent> SendAsync(Copy copy, IImageSource source, CancellationToken ct)
    {
        await _slots!.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var operation = Operation(copy);
            var push = RegistryRequestContext.Push(_target.Repository);
            if (await _client.BlobExistsOnceAsync(_target.Repository, copy.Blob.Digest, push, ct).ConfigureAwait(false))
            {
                return new Sent(null, AlreadyPresent: true);
            }
            var session = await _uploader.StartKnownAsync(push, operation, CancelTimeout).ConfigureAwait(false);
            copy.Session = session.Location;
            ct.ThrowIfCancellationRequested();
            var blob = await source.OpenBlobAsync(copy.Blob, ct).ConfigureAwait(false);
            await using var disposeBlob = blob.ConfigureAwait(false);
            var progress = new TransferProgress(_log, $"{copy.Label} -> {_client.Registry}/{_target.Repository}", copy.Blob.Size);
            // One PATCH for the whole blob, unless the registry (or VddkForceChunkedUpload) wants smaller requests.
            var chunk = _options.ForceChunkedUpload ? Math.Max(_options.ChunkSize, 1) : Math.Max(copy.Blob.Size, 1);
            var location = (await _uploader.SendChunksAsync(session, blob, copy.Blob.Size, chunk, progress, operation, ct).ConfigureAwait(false)).Location;
            copy.Session = location;
            // Read to its end, the source's stream verifies the size and digest of what was sent, as in an ordinary copy.
            _ = await blob.ReadAsync(new byte[1], ct).ConfigureAwait(false);
            return new Sent(location, AlreadyPresent: false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// Makes the bytes sent for <paramref name="blob"/> its blob in the target (the registry verifies the digest when
    /// it closes the session). Null when this copy cannot give the blob (not a base layer it copies, stopped, failed,
    /// or refused at the commit): the caller copies it the ordinary way.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<BlobPushResult?> TryCommitAsync(Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        Copy? copy;
        lock (_gate)
        {
            if (!_copies.TryGetValue(blob.Digest, out copy) || copy.Blob.Size != blob.Size || _stop.IsCancellationRequested)
            {
                return null;
            }
        }
        var label = $"{copy.Label} ({blob.Digest.Hex[..12]})";
        Sent sent;
        try
        {
            sent = await copy.Sending.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            _log.Detail($"{label}: copying it while the archive was read failed ({Describe(ex)}); copying it now.");
            return null;
        }
        if (sent.AlreadyPresent)
        {
            _log.Detail($"{label}: already in {_client.Registry}/{_target.Repository}, skipped.");
            return new BlobPushResult(blob, BlobOutcome.Skipped, 0);
        }
        try
        {
            await _uploader.CommitAsync(sent.Location!, blob.Digest, Operation(copy), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is VddkException or TransientRegistryException && !cancellationToken.IsCancellationRequested)
        {
            _log.Detail($"{label}: the registry did not accept the bytes copied while the archive was read ({Describe(ex)}); copying it now.");
            return null;
        }
        copy.Committed = true;
        _log.Detail($"{label}: copied while the archive was read ({TransferProgress.Megabytes(blob.Size)}), committed after the checks passed.");
        return new BlobPushResult(blob, BlobOutcome.Uploaded, blob.Size);
    }

    private static string Describe(Exception ex) => ex is OperationCanceledException ? "stopped" : VddkException.Reason(ex);

    /// <summary>Stops the transfers still running and cancels every session that was not committed.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask DisposeAsync()
    {
        List<Copy> copies;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            (_begun, _disposed) = (true, true);
            copies = [.. _copies.Values];
            try
            {
                _stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // already disposed
            }
        }
        foreach (var copy in copies)
        {
            try
            {
                await copy.Sending.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Reported (or irrelevant) already; what is left to do is cancelling the session.
            }
        }
        using var timeout = new CancellationTokenSource(CancelTimeout);
        foreach (var copy in copies)
        {
            if (!copy.Committed && copy.Session is { } session)
            {
                try
                {
                    await _uploader.CancelQuietlyAsync(session, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // The registry expires abandoned sessions by itself.
                }
            }
        }
        _stop.Dispose();
        _slots?.Dispose();
    }
}
