using System.Diagnostics;
using System.Runtime.CompilerServices;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.IO;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Layers;

/// <summary>Where a layer came from.</summary>
public enum LayerOrigin
{
    /// <summary>Read the archive and wrote the layer (gzip on all cores).</summary>
    Written,

    /// <summary>The archive's own gzip is the layer (<see cref="ArchiveAsLayer"/>).</summary>
    Archive,

    /// <summary>An earlier build made it from the same archive bytes and settings (<see cref="LayerCache"/>).</summary>
    Cache,
}

/// <summary>The VDDK layer, what reading the archive found, and how the layer was obtained.</summary>
public sealed record VddkLayer(LayerBlob Layer, VddkArchiveContents Contents, LayerOrigin Origin, TimeSpan Elapsed)
{
    /// <summary>
    /// Completes when the records that let the next build skip work (the cache entry, the archive's digest memo) are
    /// written; with <c>deferRecords</c> they are written in the background while the caller goes on. Never faults.
    /// </summary>
    public Task Recorded { get; init; } = Task.CompletedTask;
}

/// <summary>
/// Archive -> VDDK layer by the cheapest way that gives a correct layer:
/// 1. the layer cache (sha256 of the archive + every setting that shapes the layer or the checks): nothing read or compressed;
/// 2. the archive file itself as the layer, when its bytes already are a correct layer (<see cref="VerbatimLayerCheck"/>:
///    VMware's own archives are, unless repacked): one reading, no recompression;
/// 3. otherwise the normal path: one streaming pass, gzip on all cores.
/// Every path runs the archive's checks (a cache entry exists only for an archive that passed them with the same
/// limits), and a cache hit replays the warnings the reading gave.
/// </summary>
public static class VddkLayerFactory
{
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<VddkLayer> MakeAsync(
        string archivePath, VddkArchiveReadOptions readOptions, LayerWriterOptions layerOptions, string workDirectory,
        IBuildLog log, CancellationToken cancellationToken, bool useCache = true, Func<CancellationToken, Task>? beforePublish = null,
        ILayerUploadStarter? upload = null, bool deferRecords = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        ArgumentNullException.ThrowIfNull(readOptions);
        ArgumentNullException.ThrowIfNull(layerOptions);
        ArgumentException.ThrowIfNullOrEmpty(workDirectory);
        ArgumentNullException.ThrowIfNull(log);
        // Before the hashing thread opens it: a FIFO or a device would block it or never end.
        VddkArchiveFile.Check(archivePath);
        var clock = Stopwatch.StartNew();
        var layerDirectory = Path.Combine(workDirectory, "layers");
        try
        {
            Directory.CreateDirectory(layerDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // VddkIntermediateDirectory on a read-only or pseudo file system, or a file where a folder must be.
            throw LayerFolderUnwritable(layerDirectory, ex);
        }
        RemoveAbandonedTemporaries(layerDirectory, log);

        LayerCache? cache = null;
        LayerCacheKey? key = null;
        var memoRecorded = Task.CompletedTask;
        var recording = new WarningRecorder(log);
        ArchiveLayerAttempt? attempt = null;
        var (format, emptyTar) = FormatOf(archivePath);
        var tryArchive = layerOptions.UseArchiveAsLayer && format == ArchiveFormat.TarGzip;
        // A file whose first bytes are no archive (an ISO or an installer given by mistake, an empty file), or a tar
        // that ends before its first entry (a disk image of zeros), fails at once in the reading; hashing it for the
        // cache first would read all of it (gigabytes) to reach that error.
        if (useCache && format != ArchiveFormat.Unknown && !emptyTar)
        {
            var cacheDirectory = Path.Combine(workDirectory, "layer-cache");
            cache = new LayerCache(cacheDirectory, layerDirectory: layerDirectory);
            // The memos live apart from the cache entries, which LayerCache counts and prunes by their folder.
            var memoDirectory = Path.Combine(cacheDirectory, "archives");
            RemoveAbandonedRecords(cacheDirectory, memoDirectory, log);
            Task<ArchiveDigestLookup> hashing;
            Task<ArchiveLayerAttempt>? speculative = null;
            using var stopSpeculation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var stopHashing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var held = new HeldBuildLog(recording);
            if (!tryArchive || ArchiveDigestMemo.IsRemembered(archivePath, memoDirectory))
            {
                hashing = HashArchiveAsync(archivePath, memoDirectory, deferRecords, stopHashing.Token);
            }
            else
            {
                // The archive must be hashed before the cache can be asked; meanwhile its checked reading starts (it
                // is needed unless the cache has the layer), with its messages held until the cache has answered.
                // The hash is a blocking loop: a thread of its own, so the thread pool stays free for the reading
                // and the registry requests (on 2 cores the pool starts with 2 threads and adds more only slowly).
                hashing = Task.Factory.StartNew(() => HashArchiveAsync(archivePath, memoDirectory, deferRecords, stopHashing.Token),
                    stopHashing.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
                var expected = DigestOf(hashing);
                speculative = Task.Run(() => TryArchiveAsLayerAsync(archivePath, expected, readOptions, layerOptions, layerDirectory, held, beforePublish, upload, stopSpeculation.Token), stopSpeculation.Token);
            }

            ArchiveDigestLookup lookup;
            CachedLayer? hit;
            try
            {
                if (speculative is not null && await Task.WhenAny(hashing, speculative).ConfigureAwait(false) == speculative
                    && speculative.Exception?.InnerException is VddkException { Code: var code } && code.StartsWith("VDDK1", StringComparison.Ordinal))
                {
                    // The archive itself was refused (1xxx) before its hash was done: no cache entry exists for an
                    // archive that fails its checks, so the rest of a large file is not read for it. (Other failures,
                    // such as a read-only layer folder, still wait: the cache may have the layer.)
                    await stopHashing.CancelAsync().ConfigureAwait(false);
                    try { await hashing.ConfigureAwait(false); } catch (Exception ex) when (ex is not OutOfMemoryException) { /* superseded */ }
                    await speculative.ConfigureAwait(false);
                }
                lookup = await hashing.ConfigureAwait(false);
                key = LayerCacheKey.Create(lookup.Digest, layerOptions, readOptions, Path.GetFileName(archivePath));
                hit = await cache.TryGetAsync(key, cancellationToken, log).ConfigureAwait(false);
            }
            catch
            {
                await AbandonAsync(speculative, stopSpeculation).ConfigureAwait(false);
                throw;
            }
            memoRecorded = lookup.Recorded;
            if (lookup.Remembered)
            {
                log.Detail($"The archive's sha256 {lookup.Digest} is remembered: the file is unchanged since it was hashed (same inode, size, mtime and ctime).");
            }
            if (hit is not null)
            {
                await AbandonAsync(speculative, stopSpeculation).ConfigureAwait(false); // its held messages are dropped
                foreach (var warning in hit.Warnings)
                {
                    log.Warn(warning.Code, warning.Message);
                }
                log.Detail($"VDDK layer {hit.Layer.Descriptor.Digest} reused: an earlier build made it from the same archive ({key.Archive}) and settings.");
                return new VddkLayer(hit.Layer, hit.Contents, LayerOrigin.Cache, clock.Elapsed) { Recorded = memoRecorded };
            }
            held.Release();
            if (speculative is not null)
            {
                attempt = await speculative.ConfigureAwait(false);
            }
        }

        IBuildLog readLog = recording;
        VddkArchiveContents? contents = null;
        LayerBlob? layer = null;
        var origin = LayerOrigin.Written;
        if (tryArchive)
        {
            attempt ??= await TryArchiveAsLayerAsync(archivePath, Task.FromResult(key?.Archive), readOptions, layerOptions, layerDirectory, recording, beforePublish, upload, cancellationToken).ConfigureAwait(false);
            if (attempt.Layer is not null)
            {
                (layer, contents, origin) = (attempt.Layer, attempt.Contents, LayerOrigin.Archive);
                upload?.Ready(layer.Descriptor);
                log.Detail("The archive's own gzip is a correct layer as it is (canonical names and modes, no metadata the layer drops); it is used unchanged, without recompressing.");
            }
            else
            {
                log.Detail($"The archive's own gzip cannot be the layer as it is ({attempt.Refusal}); writing the layer.");
                if (attempt.Contents is not null)
                {
                    readLog = NullBuildLog.Instance; // the complete first reading gave (and recorded) the warnings already
                }
            }
        }
        if (layer is null)
        {
            try
            {
                await using var writer = new LayerWriter(layerDirectory, layerOptions);
                contents = await new VddkArchiveReader(archivePath, readOptions, readLog).ReadAsync(writer, cancellationToken).ConfigureAwait(false);
                await PublishingAllowedAsync(beforePublish, cancellationToken).ConfigureAwait(false);
                layer = await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (VddkException ex) when (ex.Code == ErrorCodes.OutputWriteFailed && ex.InnerException is { } inner && DiskSpace.IsFull(inner))
            {
                // The writer knows the folder, not how large the layer gets: about as large as the archive.
                throw LayerFolderUnwritable(Path.GetFullPath(layerDirectory), inner, archivePath);
            }
        }

        var cacheRecorded = Task.CompletedTask;
        if (cache is not null && key is not null)
        {
            var (storedKey, storedLayer, storedContents) = (key, layer, contents!);
            var store = [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))] async Task () =>
            {
                try
                {
                    await cache.StoreAsync(storedKey, storedLayer, storedContents, recording.Warnings, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    log.Detail($"Could not record the layer in the cache ({ex.Message}); the next build makes it again.");
                }
            };
            cacheRecorded = deferRecords ? Task.Run(store, CancellationToken.None) : store();
            if (!deferRecords)
            {
                await cacheRecorded.ConfigureAwait(false);
            }
        }
        return new VddkLayer(layer, contents!, origin, clock.Elapsed) { Recorded = Task.WhenAll(memoRecorded, cacheRecorded) };
    }

    private sealed record ArchiveLayerAttempt(LayerBlob? Layer, VddkArchiveContents? Contents, string? Refusal);

    /// <summary>
    /// Reads the archive once with every check, copying its bytes into the layer folder under a temporary name, and
    /// decides on the way whether they are a correct layer as they are (<see cref="VerbatimLayerCheck"/>). Stops
    /// reading at the first reason they are not (the normal path then reads again); a bad archive fails here exactly
    /// as on the normal path. The copy is what gets published, so the layer is the very bytes that were checked; an
    /// <paramref name="upload"/> may send the copy as it grows, and is told when it will not be the layer.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<ArchiveLayerAttempt> TryArchiveAsLayerAsync(
        string archivePath, Task<Digest?> archiveDigest, VddkArchiveReadOptions readOptions, LayerWriterOptions layerOptions, string layerDirectory,
        IBuildLog log, Func<CancellationToken, Task>? beforePublish, ILayerUploadStarter? upload, CancellationToken cancellationToken)
    {
        var directory = Path.GetFullPath(layerDirectory);
        var temp = Path.Combine(directory, $".archive-layer-{Guid.NewGuid():N}.tar.gz.tmp");
        var published = false;
        GrowingFile copy;
        try
        {
            copy = GrowingFile.CreateNew(temp);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw LayerFolderUnwritable(directory, ex, archivePath);
        }
        try
        {
            if (upload is not null && ArchiveLength(archivePath) is { } length)
            {
                upload.Begin(copy, length, archiveDigest);
            }
            VddkArchiveContents contents;
            Digest fileDigest, tarDigest;
            long fileLength;
            await using (copy)
            {
                // Copy failures are refusals inside the check (the normal path then reports the folder's problem);
                // what the reading throws is about the archive and passes through as it is.
                using var check = new VerbatimLayerCheck(copy);
                try
                {
                    contents = await new VddkArchiveReader(archivePath, readOptions, log).ReadAsync(new StopWhenRefused(check), cancellationToken, check).ConfigureAwait(false);
                }
                catch (VerbatimRefusedException)
                {
                    return new ArchiveLayerAttempt(null, null, check.Refusal);
                }
                if (check.Qualifies && layerOptions.SourceDateEpoch is { } epoch && contents.NewestModificationTime > epoch)
                {
                    check.Refuse("SOURCE_DATE_EPOCH is older than some of its entries, whose times the layer clamps");
                }
                if (!check.Qualifies)
                {
                    return new ArchiveLayerAttempt(null, contents, check.Refusal);
                }
                (fileDigest, tarDigest, fileLength) = (check.FileDigest, check.TarDigest, check.FileLength);
                copy.Complete();
            }

            await PublishingAllowedAsync(beforePublish, cancellationToken).ConfigureAwait(false);
            var final = Path.Combine(directory, $"sha256-{fileDigest.Hex}.tar.gz");
            try
            {
                LayerWriter.Publish(temp, final, fileLength);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw LayerFolderUnwritable(directory, ex, archivePath);
            }
            published = true;
            var blob = new LayerBlob(final, new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = fileDigest, Size = fileLength }, tarDigest);
            return new ArchiveLayerAttempt(blob, contents, null);
        }
        finally
        {
            if (!published)
            {
                upload?.Abandon("the archive's own gzip is not the layer");
                try { File.Delete(temp); } catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { /* a stray .tmp is never taken for a layer */ }
            }
        }
    }

    private static long? ArchiveLength(string archivePath)
    {
        try
        {
            return new FileInfo(archivePath).Length;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // the reading reports it
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<Digest?> DigestOf(Task<ArchiveDigestLookup> hashing)
    {
        try
        {
            return (await hashing.ConfigureAwait(false)).Digest;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return null; // reported by whoever awaits the hashing itself
        }
    }

    /// <summary>Stops a reading started on speculation and waits until it has cleaned up (temporary copy, upload).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private static async Task AbandonAsync(Task<ArchiveLayerAttempt>? speculative, CancellationTokenSource stop)
    {
        if (speculative is null)
        {
            return;
        }
        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await speculative.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Superseded: by the cache's layer, or by the error being reported.
        }
    }

    /// <summary>
    /// Deletes the temporary layer files of builds that were killed (<c>.layer-*.tar.gz.tmp</c> of the writer,
    /// <c>.archive-layer-*.tar.gz.tmp</c> of the archive's copy; see <see cref="AbandonedTemporaryFiles"/>).
    /// </summary>
    internal static void RemoveAbandonedTemporaries(string layerDirectory, IBuildLog log) =>
        AbandonedTemporaryFiles.Remove(layerDirectory,
            name => name.EndsWith(".tar.gz.tmp", StringComparison.Ordinal)
                && (name.StartsWith(".layer-", StringComparison.Ordinal) || name.StartsWith(".archive-layer-", StringComparison.Ordinal)),
            "a temporary layer file", log);

    /// <summary>Deletes the temporary cache entries and digest memos of builds killed while writing them (small, but one per kill).</summary>
    internal static void RemoveAbandonedRecords(string cacheDirectory, string memoDirectory, IBuildLog log)
    {
        AbandonedTemporaryFiles.Remove(cacheDirectory, LayerCache.IsTemporaryRecordName, "a temporary layer cache entry", log);
        AbandonedTemporaryFiles.Remove(memoDirectory, LayerCache.IsTemporaryRecordName, "a temporary archive digest memo", log);
    }

    private static VddkException LayerFolderUnwritable(string directory, Exception ex, string? archivePath = null) => new(ErrorCodes.OutputWriteFailed,
        $"Could not write the layer file in '{directory}': {VddkException.Reason(ex)}."
            + (DiskSpace.IsFull(ex)
                ? DiskSpace.Shortfall(ex, directory, archivePath is null ? null : ArchiveLength(archivePath), "VddkIntermediateDirectory")
                : " Check that the folder is writable by the user the build runs as, or set VddkIntermediateDirectory to a folder that is."),
        directory, ex);

    /// <summary>
    /// The archive's format by its first bytes (Unknown also for an empty file), and whether it is a plain tar whose
    /// first block is the end-of-archive block. Tar for a file that cannot be read: the reading reports it.
    /// </summary>
    private static (ArchiveFormat Format, bool EmptyTar) FormatOf(string archivePath)
    {
        try
        {
            using var file = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            var head = new byte[ArchiveFormatSniffer.HeadLength];
            var read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            var format = ArchiveFormatSniffer.Detect(head.AsSpan(0, read));
            return (format, format == ArchiveFormat.Tar && head.AsSpan(0, read).IndexOfAnyExcept((byte)0) < 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (ArchiveFormat.Tar, false); // not the archive-as-layer path; the normal path reports what is wrong with it
        }
    }

    /// <summary>Takes no entries; ends the reading as soon as the archive is known not to be usable as it is.</summary>
    private sealed class StopWhenRefused(VerbatimLayerCheck check) : IVddkEntrySink
    {
        public ValueTask WriteEntryAsync(VddkEntry entry, Stream? content, CancellationToken cancellationToken) =>
            check.Refusal is null ? ValueTask.CompletedTask : throw new VerbatimRefusedException();
    }

    private sealed class VerbatimRefusedException : Exception
    {
    }

    /// <summary>
    /// Lets the caller veto publishing (e.g. until the base image is known to be usable), so that a build failing
    /// for any reason leaves no new layer file behind. Runs at most once per build.
    /// </summary>
    private static Task PublishingAllowedAsync(Func<CancellationToken, Task>? beforePublish, CancellationToken cancellationToken) =>
        beforePublish?.Invoke(cancellationToken) ?? Task.CompletedTask;

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<ArchiveDigestLookup> HashArchiveAsync(string archivePath, string cacheDirectory, bool deferWrite, CancellationToken cancellationToken)
    {
        try
        {
            return await ArchiveDigestMemo.GetAsync(archivePath, cacheDirectory, LayerCache.HashFileAsync, cancellationToken, deferWrite: deferWrite).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VddkException(ErrorCodes.ArchiveNotFound,
                $"The VDDK archive '{archivePath}' does not exist. Download VMware-vix-disklib-<version>.x86_64.tar.gz from the Broadcom developer portal and set VddkArchive to its path.",
                archivePath, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw VddkArchiveFile.Unreadable(archivePath, ex);
        }
    }

    /// <summary>Holds messages until <see cref="Release"/> (then passes them on, and everything after); dropped if never released.</summary>
    private sealed class HeldBuildLog(IBuildLog inner) : IBuildLog
    {
        private readonly List<Action<IBuildLog>> _held = [];
        private bool _released;

        public void Info(string message) => Pass(l => l.Info(message));

        public void Detail(string message) => Pass(l => l.Detail(message));

        public void Warn(string code, string message) => Pass(l => l.Warn(code, message));

        public void Release()
        {
            lock (_held)
            {
                _released = true;
                foreach (var message in _held)
                {
                    message(inner);
                }
                _held.Clear();
            }
        }

        private void Pass(Action<IBuildLog> message)
        {
            lock (_held)
            {
                if (!_released)
                {
                    _held.Add(message);
                    return;
                }
            }
            message(inner);
        }
    }

    /// <summary>Passes everything on and keeps the warnings, so a cache hit can give them again.</summary>
    private sealed class WarningRecorder(IBuildLog inner) : IBuildLog
    {
        private readonly List<CachedWarning> _warnings = [];

        public IReadOnlyList<CachedWarning> Warnings => _warnings;

        public void Info(string message) => inner.Info(message);

        public void Detail(string message) => inner.Detail(message);

        public void Warn(string code, string message)
        {
            lock (_warnings)
            {
                _warnings.Add(new CachedWarning(code, message));
            }
            inner.Warn(code, message);
        }
    }
}
