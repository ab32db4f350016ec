using System.Diagnostics;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;

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
public sealed record VddkLayer(LayerBlob Layer, VddkArchiveContents Contents, LayerOrigin Origin, TimeSpan Elapsed);

/// <summary>
/// Archive -> VDDK layer by the cheapest way that gives a correct layer:
/// 1. the layer cache (sha256 of the archive + every setting that shapes the layer or the checks): nothing read or compressed;
/// 2. the archive itself as the layer, when its tar is byte-for-byte the layer's (never for VMware's archives, which
///    fail the one-header pre-check at no cost);
/// 3. otherwise the normal path: one streaming pass, gzip on all cores.
/// Every path runs the archive's checks (a cache entry exists only for an archive that passed them with the same
/// limits), and a cache hit replays the warnings the reading gave.
/// </summary>
public static class VddkLayerFactory
{
    public static async Task<VddkLayer> MakeAsync(
        string archivePath, VddkArchiveReadOptions readOptions, LayerWriterOptions layerOptions, string workDirectory,
        IBuildLog log, CancellationToken cancellationToken, bool useCache = true, Func<CancellationToken, Task>? beforePublish = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        ArgumentNullException.ThrowIfNull(readOptions);
        ArgumentNullException.ThrowIfNull(layerOptions);
        ArgumentException.ThrowIfNullOrEmpty(workDirectory);
        ArgumentNullException.ThrowIfNull(log);
        var clock = Stopwatch.StartNew();
        var layerDirectory = Path.Combine(workDirectory, "layers");
        Directory.CreateDirectory(layerDirectory);

        LayerCache? cache = null;
        LayerCacheKey? key = null;
        if (useCache)
        {
            cache = new LayerCache(Path.Combine(workDirectory, "layer-cache"));
            key = LayerCacheKey.Create(await HashArchiveAsync(archivePath, cancellationToken).ConfigureAwait(false), layerOptions, readOptions, Path.GetFileName(archivePath));
            if (await cache.TryGetAsync(key, cancellationToken).ConfigureAwait(false) is { } hit)
            {
                foreach (var warning in hit.Warnings)
                {
                    log.Warn(warning.Code, warning.Message);
                }
                log.Detail($"VDDK layer {hit.Layer.Descriptor.Digest} reused: an earlier build made it from the same archive ({key.Archive}) and settings.");
                return new VddkLayer(hit.Layer, hit.Contents, LayerOrigin.Cache, clock.Elapsed);
            }
        }

        var recording = new WarningRecorder(log);
        IBuildLog readLog = recording;
        VddkArchiveContents? contents = null;
        LayerBlob? layer = null;
        var origin = LayerOrigin.Written;
        if (ArchiveAsLayer.MightQualify(archivePath))
        {
            await using (var probe = LayerWriter.ForDiffIdOnly(layerOptions))
            {
                contents = await new VddkArchiveReader(archivePath, readOptions, readLog).ReadAsync(probe, cancellationToken).ConfigureAwait(false);
                var diffId = await probe.CompleteDiffIdAsync(cancellationToken).ConfigureAwait(false);
                await PublishingAllowedAsync(beforePublish, cancellationToken).ConfigureAwait(false);
                layer = await ArchiveAsLayer.TryUseAsync(archivePath, diffId, layerDirectory, cancellationToken).ConfigureAwait(false);
            }
            if (layer is not null)
            {
                origin = LayerOrigin.Archive;
                log.Detail("The archive's own gzip already holds exactly the layer's tar; it is used as the layer unchanged.");
            }
            else
            {
                log.Detail("The archive looked like a layer but its tar differs from the layer's; writing the layer.");
                readLog = NullBuildLog.Instance; // the first reading gave (and recorded) the warnings already
            }
        }
        if (layer is null)
        {
            await using var writer = new LayerWriter(layerDirectory, layerOptions);
            contents = await new VddkArchiveReader(archivePath, readOptions, readLog).ReadAsync(writer, cancellationToken).ConfigureAwait(false);
            await PublishingAllowedAsync(beforePublish, cancellationToken).ConfigureAwait(false);
            layer = await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        if (cache is not null && key is not null)
        {
            try
            {
                await cache.StoreAsync(key, layer, contents!, recording.Warnings, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log.Detail($"Could not record the layer in the cache ({ex.Message}); the next build makes it again.");
            }
        }
        return new VddkLayer(layer, contents!, origin, clock.Elapsed);
    }

    /// <summary>
    /// Lets the caller veto publishing (e.g. until the base image is known to be usable), so that a build failing
    /// for any reason leaves no new layer file behind. Runs at most once per build.
    /// </summary>
    private static Task PublishingAllowedAsync(Func<CancellationToken, Task>? beforePublish, CancellationToken cancellationToken) =>
        beforePublish?.Invoke(cancellationToken) ?? Task.CompletedTask;

    private static async Task<Oci.Digest> HashArchiveAsync(string archivePath, CancellationToken cancellationToken)
    {
        try
        {
            return await LayerCache.HashFileAsync(archivePath, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VddkException(ErrorCodes.ArchiveNotFound,
                $"The VDDK archive '{archivePath}' does not exist. Download VMware-vix-disklib-<version>.x86_64.tar.gz from the Broadcom developer portal and set VddkArchive to its path.",
                archivePath, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.ArchiveCorrupt,
                $"The VDDK archive '{archivePath}' cannot be read: {ex.Message}. Check its permissions, or download it again.", archivePath, ex);
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
