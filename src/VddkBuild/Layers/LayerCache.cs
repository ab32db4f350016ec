using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.IO;
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

    /// <summary>
    /// Bumped whenever the checks an archive must pass change (an input newly refused, a warning newly given), so a
    /// layer cached by an earlier version is not served for an archive that this version's checks would refuse: a hit
    /// skips the archive's reading, and with it every check.
    /// </summary>
    public const string ChecksVersion = "2026-11-25";

    /// <param name="archiveFileName">The archive's file name: the build number is read from it, so a renamed archive is another key.</param>
    public static LayerCacheKey Create(Digest archive, LayerWriterOptions layer, VddkArchiveReadOptions read, string archiveFileName = "") =>
        Create(archive, layer, read, archiveFileName, ChecksVersion);

    internal static LayerCacheKey Create(Digest archive, LayerWriterOptions layer, VddkArchiveReadOptions read, string archiveFileName, string checksVersion)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(read);
        var settings = string.Join(';',
            FormatVersion,
            "checks=" + checksVersion,
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
/// layer folder. Nothing in the folder is trusted for what it claims: an entry carries the sha256 of its own JSON (an
/// entry edited, cut, flipped or of another format is a miss), and its layer file is used unchanged only while it is
/// the very file that was recorded (device, inode, size, mtime and ctime, as <see cref="ArchiveDigestMemo"/> keeps
/// them: no write, <c>touch -r</c> or copy keeps the ctime). A layer file that is not (a CI cache restored the folder,
/// someone copied it) is hashed: the right bytes are recorded again, anything else is deleted and the layer made again.
/// The layer file is named relative to the layer folder, so a folder copied elsewhere refers to its own files. Only the
/// most recently used <c>keep</c> entries are kept, and layer files no entry refers to are deleted with them, so the
/// folder does not grow with every archive ever built.
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
    private readonly string _layerDirectory;
    private readonly int _keep;

    /// <param name="directory">The cache folder (e.g. <c>obj/vddk/layer-cache</c>); created on first store.</param>
    /// <param name="keep">Entries kept (most recently used first).</param>
    /// <param name="layerDirectory">The layer folder the entries' layer files are named in; by default <c>layers</c> beside <paramref name="directory"/>.</param>
    public LayerCache(string directory, int keep = 3, string? layerDirectory = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        _directory = Path.GetFullPath(directory);
        _layerDirectory = Path.GetFullPath(layerDirectory ?? Path.Combine(Path.GetDirectoryName(_directory)!, "layers"));
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

    /// <param name="log">Told (detail) why an entry or its layer file was not used.</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<CachedLayer?> TryGetAsync(LayerCacheKey key, CancellationToken cancellationToken, IBuildLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        var entryPath = EntryPath(key);
        if (ReadEntry(entryPath, out var unusable) is not { } entry)
        {
            if (unusable is not null)
            {
                log?.Detail($"The layer cache entry '{entryPath}' is not used ({unusable}); the layer is made again.");
                TryDeleteEntry(entryPath);
            }
            return null;
        }
        if (entry.Key != key.Archive.Value + "\n" + key.Settings)
        {
            TryDeleteEntry(entryPath);
            return null;
        }
        if (!Digest.TryParse(entry.Digest, out var digest) || !Digest.TryParse(entry.DiffId, out var diffId) || entry.Size <= 0
            || string.IsNullOrEmpty(entry.Version) || string.IsNullOrEmpty(entry.MediaType) || entry.Entries is null)
        {
            log?.Detail($"The layer cache entry '{entryPath}' is incomplete; the layer is made again.");
            TryDeleteEntry(entryPath);
            return null;
        }
        var layerFile = new FileInfo(Path.Combine(_layerDirectory, entry.LayerPath));
        if (layerFile.Name != $"sha256-{digest.Hex}.tar.gz" || !layerFile.Exists || layerFile.Length != entry.Size)
        {
            if (layerFile.Exists || Directory.Exists(layerFile.FullName))
            {
                log?.Detail($"The cached layer file '{layerFile.FullName}' is not the {entry.Size}-byte layer {digest} it should be; the layer is made again.");
            }
            TryDeleteEntry(entryPath);
            return null;
        }
        var identity = FileIdentity.TryRead(layerFile.FullName);
        if (identity is null || identity != entry.LayerIdentity)
        {
            // Not the file that was recorded (restored from a CI cache, copied, touched, written to, or no statx here):
            // its bytes decide.
            Digest actual;
            try
            {
                actual = await HashFileAsync(layerFile.FullName, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log?.Detail($"The cached layer file '{layerFile.FullName}' cannot be read ({VddkException.Reason(ex)}); the layer is made again.");
                TryDeleteEntry(entryPath);
                return null;
            }
            if (actual != digest)
            {
                log?.Detail($"The cached layer file '{layerFile.FullName}' is corrupt (its sha256 is {actual}, not {digest}); it is deleted and the layer made again.");
                TryDeleteEntry(entryPath);
                TryDelete(layerFile.FullName);
                return null;
            }
            if (identity is not null)
            {
                var verified = entry with { LayerIdentity = identity };
                await TryWriteEntryAsync(entryPath, verified, cancellationToken).ConfigureAwait(false);
            }
        }
        Touch(entryPath);
        var layer = new LayerBlob(layerFile.FullName, new Descriptor { MediaType = entry.MediaType, Digest = digest, Size = entry.Size }, diffId);
        var contents = new VddkArchiveContents(entry.Version, entry.BuildNumber, entry.Entries, DateTimeOffset.FromUnixTimeSeconds(entry.NewestModificationTime), entry.DroppedMacMetadataCount);
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
            // Relative to the layer folder when it is in it: a cache folder copied elsewhere then refers to its own layer files.
            LayerPath = layerFile.DirectoryName == _layerDirectory ? layerFile.Name : layerFile.FullName,
            MediaType = layer.Descriptor.MediaType,
            Digest = layer.Descriptor.Digest.Value,
            Size = layer.Descriptor.Size,
            DiffId = layer.DiffId.Value,
            LayerIdentity = FileIdentity.TryRead(layerFile.FullName),
            Version = contents.Version,
            BuildNumber = contents.BuildNumber,
            NewestModificationTime = contents.NewestModificationTime.ToUnixTimeSeconds(),
            DroppedMacMetadataCount = contents.DroppedMacMetadataCount,
            Entries = [.. contents.Entries],
            Warnings = [.. warnings],
        };
        Directory.CreateDirectory(_directory);
        await WriteEntryAsync(EntryPath(key), entry, cancellationToken).ConfigureAwait(false);
        Prune();
    }

    /// <summary>
    /// Writes <paramref name="entry"/> as <c>{"sha256":"...","entry":{...}}</c>, the hash being that of the entry's
    /// JSON bytes, under a temporary name renamed over <paramref name="entryPath"/>: readers see the old or the new
    /// entry, whole, and any change to it afterwards is found.
    /// </summary>
    /// <remarks>
    /// The entry's JSON goes to the file as it is serialized, hashed on the way, and the hash is written into the
    /// space left for it at the start: an entry lists every archive entry (about 170 bytes each, 13 MB for 80,000),
    /// and serializing it to an array first held it, and the buffers it grew through, in memory at once.
    /// </remarks>
    private static Task WriteEntryAsync(string entryPath, Entry entry, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var temp = TemporaryPathFor(entryPath);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                stream.Write(EntryHead);
                var hashAt = stream.Position;
                stream.Write(HashPlaceholder);
                stream.Write(EntryMiddle);
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var output = new HashingStreamWriter(stream, hash);
                using (var writer = new Utf8JsonWriter(output, WriterOptions))
                {
                    JsonSerializer.Serialize(writer, entry, EntryWriteContext.Default.Entry);
                }
                stream.Write("}"u8);
                stream.Position = hashAt;
                stream.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(hash.GetHashAndReset())));
            }
            File.Move(temp, entryPath, overwrite: true);
            return Task.CompletedTask;
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>The writer settings the serializer itself would take from the entry's options.</summary>
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = EntryWriteContext.Default.Options.Encoder,
        Indented = EntryWriteContext.Default.Options.WriteIndented,
    };

    private static ReadOnlySpan<byte> HashPlaceholder => "0000000000000000000000000000000000000000000000000000000000000000"u8;

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private static async Task TryWriteEntryAsync(string entryPath, Entry entry, CancellationToken cancellationToken)
    {
        try
        {
            await WriteEntryAsync(entryPath, entry, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Only a shortcut: the next build hashes the layer file again.
        }
    }

    /// <summary>The entry in <paramref name="entryPath"/>, or null: absent (<paramref name="unusable"/> null), or why it cannot be used.</summary>
    private static Entry? ReadEntry(string entryPath, out string? unusable)
    {
        unusable = null;
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(entryPath);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            unusable = $"cannot be read: {VddkException.Reason(ex)}";
            return null;
        }
        // The layout WriteEntryAsync gives: {"sha256":"<64 hex>","entry":<the entry's JSON>}, so the hashed bytes are
        // found without parsing the document twice (an entry lists every archive entry: megabytes for a large VDDK).
        var head = EntryHead.Length;
        if (bytes.Length < head + 64 + EntryMiddle.Length + 3 || !bytes.AsSpan(0, head).SequenceEqual(EntryHead)
            || !bytes.AsSpan(head + 64, EntryMiddle.Length).SequenceEqual(EntryMiddle) || bytes[^1] != (byte)'}')
        {
            unusable = "not an entry of this version";
            return null;
        }
        var json = bytes.AsSpan(head + 64 + EntryMiddle.Length, bytes.Length - head - 64 - EntryMiddle.Length - 1);
        var stated = bytes.AsSpan(head, 64);
        Span<byte> actual = stackalloc byte[64];
        Encoding.ASCII.GetBytes(Convert.ToHexStringLower(SHA256.HashData(json)), actual);
        if (!stated.SequenceEqual(actual))
        {
            unusable = "its content does not match its checksum: corrupt or edited";
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<Entry>(json, Json) ?? throw new JsonException("null entry");
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            unusable = "not valid JSON of an entry";
            return null;
        }
    }

    private static ReadOnlySpan<byte> EntryHead => "{\"sha256\":\""u8;

    private static ReadOnlySpan<byte> EntryMiddle => "\",\"entry\":"u8;

    /// <summary>
    /// A unique temporary name for a record written beside <paramref name="path"/>: hidden, so that it is never
    /// counted as an entry, and recognised by <see cref="IsTemporaryRecordName"/> once a killed build left it.
    /// </summary>
    internal static string TemporaryPathFor(string path) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");

    /// <summary>True for the temporary names of <see cref="TemporaryPathFor"/> (<c>.NAME.json.&lt;32 hex&gt;.tmp</c>).</summary>
    internal static bool IsTemporaryRecordName(string name) =>
        name.Length > 43 && name[0] == '.' && name.EndsWith(".tmp", StringComparison.Ordinal)
        && name.AsSpan(name.Length - 42, 6).SequenceEqual(".json.") && !name.AsSpan(name.Length - 36, 32).ContainsAnyExcept("0123456789abcdef");

    private string EntryPath(LayerCacheKey key) => Path.Combine(_directory, key.Id + ".json");

    /// <summary>Keeps the <c>keep</c> most recently used entries; deletes the others and layer files only they referred to.</summary>
    private void Prune()
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
                if (LayerPathOf(file.FullName) is { } path)
                {
                    kept.Add(path);
                }
            }
            foreach (var file in entries.Skip(_keep))
            {
                var path = LayerPathOf(file.FullName);
                TryDelete(file.FullName);
                if (path is not null && !kept.Contains(path) && Path.GetDirectoryName(path) == _layerDirectory)
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

    private string? LayerPathOf(string entryPath) =>
        ReadEntry(entryPath, out _) is { LayerPath.Length: > 0 } entry ? Path.GetFullPath(Path.Combine(_layerDirectory, entry.LayerPath)) : null;

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

    /// <summary>Deletes an entry, also one that something replaced by a folder.</summary>
    private static void TryDeleteEntry(string path)
    {
        TryDelete(path);
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
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

    private sealed record Entry
    {
        public string Key { get; init; } = "";
        public string LayerPath { get; init; } = "";
        public string MediaType { get; init; } = MediaTypes.OciLayerGzip;
        public string Digest { get; init; } = "";
        public long Size { get; init; }
        public string DiffId { get; init; } = "";
        /// <summary>The layer file as recorded (null where statx is not available: the file is then hashed on every hit).</summary>
        public FileIdentity? LayerIdentity { get; init; }
        public string Version { get; init; } = "";
        public string? BuildNumber { get; init; }
        public long NewestModificationTime { get; init; }
        public int DroppedMacMetadataCount { get; init; }
        public List<VddkEntry>? Entries { get; init; }
        public List<CachedWarning>? Warnings { get; init; }
    }
}
