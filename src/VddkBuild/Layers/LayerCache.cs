using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VddkBuild.Archive;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Layers;

/// <summary>
/// What makes a layer: the archive's bytes (sha256) and every setting that changes the layer or the checks the
/// archive passed. Two builds with equal keys produce the same layer, so the second can reuse the first's.
/// </summary>
public sealed record LayerCacheKey(Digest Archive, string Settings)
{
    /// <summary>Bumped whenever the layer format changes (tar encoding, gzip framing), so old entries stop matching.</summary>
    public const string FormatVersion = "vddk-layer-3";

    /// <param name="archiveFileName">The archive's file name: the build number is read from it, so a renamed archive is another key.</param>
    public static LayerCacheKey Create(Digest archive, LayerWriterOptions layer, VddkArchiveReadOptions read, string archiveFileName = "")
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(read);
        var settings = string.Join(';',
            FormatVersion,
            "name=" + archiveFileName,
            "epoch=" + (layer.SourceDateEpoch?.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture) ?? "none"),
            "level=" + (layer.ZlibLevel?.ToString(CultureInfo.InvariantCulture) ?? layer.CompressionLevel.ToString()),
            "chunk=" + layer.GzipChunkSize.ToString(CultureInfo.InvariantCulture),
            "archiveAsLayer=" + (layer.UseArchiveAsLayer ? "yes" : "no"),
            "maxEntry=" + read.MaxEntryBytes.ToString(CultureInfo.InvariantCulture),
            "maxTotal=" + read.MaxTotalBytes.ToString(CultureInfo.InvariantCulture),
            "maxCount=" + read.MaxEntryCount.ToString(CultureInfo.InvariantCulture),
            "soname8Link=" + (read.AddSoname8Link ? "yes" : "no"));
        return new LayerCacheKey(archive, settings);
    }

    /// <summary>File-name-safe identity: sha256 of archive digest and settings.</summary>
    public string Id => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Archive.Value + "\n" + Settings)));
}

/// <summary>A layer found in the cache, with what reading its archive found (the image config needs both) and the warnings that reading gave.</summary>
public sealed record CachedLayer(LayerBlob Layer, VddkArchiveContents Contents, IReadOnlyList<CachedWarning> Warnings);

/// <summary>A warning the archive's reading gave, replayed when its layer comes from the cache.</summary>
public sealed record CachedWarning(string Code, string Message);

/// <summary>
/// Remembers which layer an archive gave, so a build with an unchanged archive and settings neither reads nor
/// recompresses it: one JSON entry per key in the cache folder, pointing at the content-addressed layer file in the
/// layer folder. An entry is used only when its layer file is still there with the recorded size and write time;
/// anything else (missing, edited, unreadable entry) is a miss and the layer is made again. Only the most recently
/// used <c>keep</c> entries are kept, and layer files no entry refers to are deleted with them, so the folder does not
/// grow with every archive ever built.
/// </summary>
public sealed partial class LayerCache
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
        TypeInfoResolver = System.Text.Json.Serialization.Metadata.JsonTypeInfoResolver.Combine(EntryJsonContext.Default, new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver()),
    };

    /// <summary>Compile-time metadata for the entry: a warm build reads one entry, and reflection would cost more than the read.</summary>
    [JsonSerializable(typeof(Entry))]
    private sealed partial class EntryJsonContext : JsonSerializerContext
    {
    }

    /// <summary>
    /// Writing only, with the reader's settings: the generated code writes the entry directly, without first building
    /// the per-property metadata that reading needs (a cold build only writes, and in a fresh build process that
    /// metadata is compiled code on the way to the push).
    /// </summary>
    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UseStringEnumConverter = true, GenerationMode = JsonSourceGenerationMode.Serialization)]
    [JsonSerializable(typeof(Entry))]
    private sealed partial class EntryWriteContext : JsonSerializerContext
    {
    }

    private readonly string _directory;
    private readonly int _keep;

    /// <param name="directory">The cache folder (e.g. <c>obj/vddk/layer-cache</c>); created on first store.</param>
    /// <param name="keep">Entries kept (most recently used first).</param>
    public LayerCache(string directory, int keep = 3)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        _directory = Path.GetFullPath(directory);
        _keep = keep;
    }

    /// <summary>sha256 of a file, streamed (0.05 s for a 20 MB archive; the read also warms the page cache for the build that may follow).</summary>
    public static Task<Digest> HashFileAsync(string path, CancellationToken cancellationToken)
    {
        // Plain blocking reads of 64 KiB: from the page cache this runs at the hash's own speed, where small
        // asynchronous reads spend as long again in hand-overs (and a larger buffer is a large-object allocation).
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
        try
        {
            int read;
            while ((read = file.Read(buffer, 0, 1 << 16)) > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                hash.AppendData(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return Task.FromResult(Digest.FromSha256Bytes(hash.GetHashAndReset()));
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<CachedLayer?> TryGetAsync(LayerCacheKey key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        var entryPath = EntryPath(key);
        Entry? entry;
        try
        {
            await using var stream = new FileStream(entryPath, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.Asynchronous);
            entry = await JsonSerializer.DeserializeAsync<Entry>(stream, Json, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            TryDelete(entryPath); // unreadable: make the layer again and overwrite the entry
            return null;
        }

        if (entry is null || entry.Key != key.Archive.Value + "\n" + key.Settings || !Digest.TryParse(entry.Digest, out var digest) || !Digest.TryParse(entry.DiffId, out var diffId))
        {
            TryDelete(entryPath);
            return null;
        }
        var layerFile = new FileInfo(entry.LayerPath);
        if (!layerFile.Exists || layerFile.Length != entry.Size || layerFile.LastWriteTimeUtc.Ticks != entry.LayerWriteTicks
            || layerFile.Name != $"sha256-{digest.Hex}.tar.gz")
        {
            TryDelete(entryPath);
            return null;
        }
        Touch(entryPath);
        var layer = new LayerBlob(layerFile.FullName, new Descriptor { MediaType = entry.MediaType, Digest = digest, Size = entry.Size }, diffId);
        var contents = new VddkArchiveContents(entry.Version, entry.BuildNumber, entry.Entries ?? [], DateTimeOffset.FromUnixTimeSeconds(entry.NewestModificationTime), entry.DroppedMacMetadataCount);
        return new CachedLayer(layer, contents, entry.Warnings ?? []);
    }

    /// <summary>Records <paramref name="layer"/> for <paramref name="key"/> (written to a temp name, then renamed) and prunes old entries.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public async Task StoreAsync(LayerCacheKey key, LayerBlob layer, VddkArchiveContents contents, CancellationToken cancellationToken) =>
        await StoreAsync(key, layer, contents, [], cancellationToken).ConfigureAwait(false);

    /// <summary>As <see cref="StoreAsync(LayerCacheKey, LayerBlob, VddkArchiveContents, CancellationToken)"/>, with the warnings to replay on a hit.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public async Task StoreAsync(LayerCacheKey key, LayerBlob layer, VddkArchiveContents contents, IReadOnlyList<CachedWarning> warnings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(contents);
        var layerFile = new FileInfo(layer.FilePath);
        var entry = new Entry
        {
            Key = key.Archive.Value + "\n" + key.Settings,
            LayerPath = layerFile.FullName,
            MediaType = layer.Descriptor.MediaType,
            Digest = layer.Descriptor.Digest.Value,
            Size = layer.Descriptor.Size,
            DiffId = layer.DiffId.Value,
            LayerWriteTicks = layerFile.LastWriteTimeUtc.Ticks,
            Version = contents.Version,
            BuildNumber = contents.BuildNumber,
            NewestModificationTime = contents.NewestModificationTime.ToUnixTimeSeconds(),
            DroppedMacMetadataCount = contents.DroppedMacMetadataCount,
            Entries = [.. contents.Entries],
            Warnings = [.. warnings],
        };
        Directory.CreateDirectory(_directory);
        var entryPath = EntryPath(key);
        var temp = entryPath + $".{Guid.NewGuid():N}.tmp";
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await using var writer = new Utf8JsonWriter(stream);
                JsonSerializer.Serialize(writer, entry, EntryWriteContext.Default.Entry);
                await writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            File.Move(temp, entryPath, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        Prune(layerFile.DirectoryName!);
    }

    private string EntryPath(LayerCacheKey key) => Path.Combine(_directory, key.Id + ".json");

    /// <summary>Keeps the <c>keep</c> most recently used entries; deletes the others and layer files only they referred to.</summary>
    private void Prune(string layerDirectory)
    {
        try
        {
            var entries = new DirectoryInfo(_directory).GetFiles("*.json").OrderByDescending(f => f.LastWriteTimeUtc).ToList();
            if (entries.Count <= _keep)
            {
                return;
            }
            var kept = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in entries.Take(_keep))
            {
                if (ReadLayerPath(file.FullName) is { } path)
                {
                    kept.Add(path);
                }
            }
            foreach (var file in entries.Skip(_keep))
            {
                var path = ReadLayerPath(file.FullName);
                TryDelete(file.FullName);
                if (path is not null && !kept.Contains(path) && Path.GetDirectoryName(path) == layerDirectory)
                {
                    TryDelete(path);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Pruning is housekeeping; a later build tries again.
        }
    }

    private static string? ReadLayerPath(string entryPath)
    {
        try
        {
            return JsonSerializer.Deserialize<Entry>(File.ReadAllBytes(entryPath), Json)?.LayerPath;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    private static void Touch(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Only affects which entries pruning keeps.
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    private sealed class Entry
    {
        public string Key { get; init; } = "";
        public string LayerPath { get; init; } = "";
        public string MediaType { get; init; } = MediaTypes.OciLayerGzip;
        public string Digest { get; init; } = "";
        public long Size { get; init; }
        public string DiffId { get; init; } = "";
        public long LayerWriteTicks { get; init; }
        public string Version { get; init; } = "";
        public string? BuildNumber { get; init; }
        public long NewestModificationTime { get; init; }
        public int DroppedMacMetadataCount { get; init; }
        public List<VddkEntry>? Entries { get; init; }
        public List<CachedWarning>? Warnings { get; init; }
    }
}
