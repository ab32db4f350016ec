using System.Security.Cryptography;
using VddkBuild.Archive;
using VddkBuild.Images;
using VddkBuild.Layers;
using VddkBuild.TestSupport.Registry;
using static VddkBuild.Tests.Layers.VddkEntries;

namespace VddkBuild.Tests.Layers;

public sealed class LayerCacheTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static VddkArchiveContents Contents(params (VddkEntry Entry, byte[]? Content)[] entries) =>
        new("8.0.1", "21562716", [.. entries.Select(e => e.Entry)], Time, 2);

    private static LayerCacheKey Key(string archiveText, LayerWriterOptions? layer = null, VddkArchiveReadOptions? read = null) =>
        LayerCacheKey.Create(VddkBuild.Oci.Digest.Compute(System.Text.Encoding.UTF8.GetBytes(archiveText)), layer ?? new LayerWriterOptions(), read ?? VddkArchiveReadOptions.Default);

    private async Task<LayerBlob> LayerAsync(string name = "layers") => await WriteLayerAsync(_temp.Sub(name), Sample());

    [Fact]
    public async Task A_stored_layer_comes_back_with_the_archive_facts()
    {
        var cache = new LayerCache(_temp.Sub("cache"));
        var layer = await LayerAsync();
        var contents = Contents([.. Sample()]);
        await cache.StoreAsync(Key("a"), layer, contents, CancellationToken.None);

        var hit = await cache.TryGetAsync(Key("a"), CancellationToken.None);

        Assert.NotNull(hit);
        Assert.Equal(layer, hit.Layer);
        Assert.Equal(contents.Version, hit.Contents.Version);
        Assert.Equal(contents.BuildNumber, hit.Contents.BuildNumber);
        Assert.Equal(contents.NewestModificationTime, hit.Contents.NewestModificationTime);
        Assert.Equal(contents.DroppedMacMetadataCount, hit.Contents.DroppedMacMetadataCount);
        Assert.Equal(contents.Entries, hit.Contents.Entries);
    }

    [Fact]
    public async Task Another_archive_or_setting_misses()
    {
        var cache = new LayerCache(_temp.Sub("cache"));
        await cache.StoreAsync(Key("a"), await LayerAsync(), Contents([.. Sample()]), CancellationToken.None);

        Assert.Null(await cache.TryGetAsync(Key("b"), CancellationToken.None));
        Assert.Null(await cache.TryGetAsync(Key("a", new LayerWriterOptions { SourceDateEpoch = Time }), CancellationToken.None));
        Assert.Null(await cache.TryGetAsync(Key("a", new LayerWriterOptions { GzipChunkSize = 1 << 16 }), CancellationToken.None));
        Assert.Null(await cache.TryGetAsync(Key("a", read: new VddkArchiveReadOptions { MaxEntryCount = 10 }), CancellationToken.None));
        Assert.Null(await cache.TryGetAsync(Key("a", read: new VddkArchiveReadOptions { AddSoname8Link = true }), CancellationToken.None));
        Assert.NotNull(await cache.TryGetAsync(Key("a"), CancellationToken.None));
    }

    [Fact]
    public async Task A_layer_cached_under_earlier_archive_checks_is_a_miss()
    {
        // A hit skips the archive's reading and so every check: a layer cached before a check was added must not be
        // served for an archive that the check now refuses.
        var cache = new LayerCache(_temp.Sub("cache"));
        var digest = VddkBuild.Oci.Digest.Compute(System.Text.Encoding.UTF8.GetBytes("a"));
        var earlier = LayerCacheKey.Create(digest, new LayerWriterOptions(), VddkArchiveReadOptions.Default, "", "2026-01-01");
        await cache.StoreAsync(earlier, await LayerAsync(), Contents([.. Sample()]), CancellationToken.None);

        Assert.NotNull(await cache.TryGetAsync(earlier, CancellationToken.None));
        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None));
    }

    [Fact]
    public async Task A_missing_layer_file_is_a_miss_and_drops_the_entry()
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory);
        var layer = await LayerAsync();
        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);

        File.Delete(layer.FilePath);
        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None));
        Assert.Empty(Directory.GetFiles(directory));
    }

    [Theory]
    [InlineData("flipped")]  // a byte changed in place, size kept
    [InlineData("zeroed")]   // a block of zeros, as a crash of the file system leaves
    [InlineData("replaced")] // another file of the same size renamed over it
    public async Task A_layer_file_corrupted_with_its_size_and_mtime_kept_is_a_miss_and_is_deleted(string how)
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory);
        var layer = await LayerAsync();
        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);
        var mtime = File.GetLastWriteTimeUtc(layer.FilePath);
        var bytes = await File.ReadAllBytesAsync(layer.FilePath);
        switch (how)
        {
            case "flipped":
                using (var file = new FileStream(layer.FilePath, FileMode.Open, FileAccess.ReadWrite))
                {
                    file.Position = bytes.Length / 2;
                    file.WriteByte((byte)(bytes[bytes.Length / 2] ^ 0xff));
                }
                break;
            case "zeroed":
                using (var file = new FileStream(layer.FilePath, FileMode.Open, FileAccess.ReadWrite))
                {
                    file.Position = 100;
                    file.Write(new byte[Math.Min(4096, bytes.Length - 100)]);
                }
                break;
            default:
                var other = layer.FilePath + ".other";
                bytes[^1] ^= 1;
                await File.WriteAllBytesAsync(other, bytes);
                File.Move(other, layer.FilePath, overwrite: true);
                break;
        }
        File.SetLastWriteTimeUtc(layer.FilePath, mtime); // touch -r: only the ctime (and inode) tell
        var log = new RecordingBuildLog();

        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None, log));
        Assert.False(File.Exists(layer.FilePath));
        Assert.Empty(Directory.GetFiles(directory));
        Assert.Contains(log.Lines, l => l.Level == "detail" && l.Message.Contains("is corrupt", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_touched_layer_file_with_its_bytes_unchanged_is_verified_and_used()
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory);
        var layer = await LayerAsync();
        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);

        File.SetLastWriteTimeUtc(layer.FilePath, DateTime.UtcNow.AddMinutes(5));
        var hit = await cache.TryGetAsync(Key("a"), CancellationToken.None);

        Assert.NotNull(hit);
        Assert.Equal(layer, hit.Layer);
        Assert.NotNull(await cache.TryGetAsync(Key("a"), CancellationToken.None));
    }

    [Fact]
    public async Task A_cache_folder_copied_elsewhere_uses_its_own_layer_files()
    {
        // A CI cache restores obj/ into another workspace: new paths, new inodes, new ctimes.
        var first = _temp.Sub("first");
        var cache = new LayerCache(Path.Combine(first, "layer-cache"));
        var layer = await WriteLayerAsync(Path.Combine(first, "layers"), Sample());
        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);
        var second = _temp.Sub("second");
        foreach (var file in Directory.GetFiles(first, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(second, Path.GetRelativePath(first, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
            File.SetLastWriteTimeUtc(copy, File.GetLastWriteTimeUtc(file));
        }
        Directory.Delete(first, recursive: true);

        var hit = await new LayerCache(Path.Combine(second, "layer-cache")).TryGetAsync(Key("a"), CancellationToken.None);

        Assert.NotNull(hit);
        Assert.Equal(Path.Combine(second, "layers", Path.GetFileName(layer.FilePath)), hit.Layer.FilePath);
        Assert.Equal(layer.Descriptor, hit.Layer.Descriptor);
    }

    public static TheoryData<string, string> EntryEdits => new()
    {
        // Each keeps the entry valid JSON of the right shape: only a checksum tells.
        { "a digit of the diffID", "\"diffId\":\"sha256:" },
        { "the version", "\"version\":\"8.0.1\"" },
        { "a forged warning", "\"warnings\":[]" },
        { "a missing field", "\"version\":\"8.0.1\"," },
    };

    [Theory]
    [MemberData(nameof(EntryEdits))]
    public async Task An_edited_entry_is_a_miss_however_valid_its_JSON(string what, string find)
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory);
        await cache.StoreAsync(Key("a"), await LayerAsync(), Contents([.. Sample()]), CancellationToken.None);
        var entry = Assert.Single(Directory.GetFiles(directory));
        var text = await File.ReadAllTextAsync(entry);
        Assert.Contains(find, text, StringComparison.Ordinal);
        var edited = what switch
        {
            "a digit of the diffID" => text.Replace(find, find + (text[text.IndexOf(find, StringComparison.Ordinal) + find.Length] == '0' ? "1" : "0"), StringComparison.Ordinal)
                .Remove(text.IndexOf(find, StringComparison.Ordinal) + find.Length + 1, 1),
            "the version" => text.Replace(find, "\"version\":\"8.0.2\"", StringComparison.Ordinal),
            "a forged warning" => text.Replace(find, "\"warnings\":[{\"code\":\"VDDK1901\",\"message\":\"forged\"}]", StringComparison.Ordinal),
            _ => text.Replace(find, "", StringComparison.Ordinal),
        };
        Assert.NotEqual(text, edited);
        await File.WriteAllTextAsync(entry, edited);
        var log = new RecordingBuildLog();

        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None, log));
        Assert.False(File.Exists(entry));
        Assert.Contains(log.Lines, l => l.Level == "detail" && l.Message.Contains("corrupt or edited", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_entry_of_another_format_or_a_folder_in_its_place_is_a_miss_and_is_replaced()
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory);
        var layer = await LayerAsync();
        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);
        var entry = Assert.Single(Directory.GetFiles(directory));
        // The previous format: the entry's fields at the top level, no checksum.
        var body = System.Text.Json.JsonDocument.Parse(await File.ReadAllBytesAsync(entry)).RootElement.GetProperty("entry").GetRawText();
        await File.WriteAllTextAsync(entry, body);
        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None));
        Assert.False(File.Exists(entry));

        Directory.CreateDirectory(Path.Combine(entry, "x"));
        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None));
        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);
        Assert.NotNull(await cache.TryGetAsync(Key("a"), CancellationToken.None));
    }

    [Fact]
    public async Task An_unreadable_entry_is_a_miss()
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory);
        await cache.StoreAsync(Key("a"), await LayerAsync(), Contents([.. Sample()]), CancellationToken.None);
        var entry = Assert.Single(Directory.GetFiles(directory));
        await File.WriteAllTextAsync(entry, "{ not json");

        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None));
        Assert.False(File.Exists(entry));
    }

    [Fact]
    public async Task Only_the_most_recent_entries_and_their_layer_files_are_kept()
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory, keep: 2);
        var layers = new List<LayerBlob>();
        for (var i = 0; i < 3; i++)
        {
            // Different mtimes give different layers in one folder.
            var entries = Sample().Select(e => (e.Entry with { ModificationTime = Time.AddDays(i) }, e.Content)).ToList();
            var layer = await WriteLayerAsync(_temp.Sub("layers"), entries);
            layers.Add(layer);
            await cache.StoreAsync(Key($"archive-{i}"), layer, Contents([.. entries]), CancellationToken.None);
            File.SetLastWriteTimeUtc(Path.Combine(directory, Key($"archive-{i}").Id + ".json"), DateTime.UtcNow.AddMinutes(i - 10));
        }
        // Entry 0 is the least recently used: pruned by the third store. Storing again prunes nothing more.
        await cache.StoreAsync(Key("archive-2"), layers[2], Contents([.. Sample()]), CancellationToken.None);

        Assert.Equal(2, Directory.GetFiles(directory, "*.json").Length);
        Assert.Null(await cache.TryGetAsync(Key("archive-0"), CancellationToken.None));
        Assert.False(File.Exists(layers[0].FilePath));
        Assert.True(File.Exists(layers[1].FilePath));
        Assert.NotNull(await cache.TryGetAsync(Key("archive-2"), CancellationToken.None));
    }

    [Fact]
    public async Task An_entry_for_a_huge_archive_is_written_as_it_is_serialized_not_held_in_memory()
    {
        // 80,000 entries make an entry of about 13 MB; serialized to an array first, the array and the buffers it grew
        // through (about 45 MB) were allocated on the storing thread.
        var cache = new LayerCache(_temp.Sub("cache"));
        var layer = await LayerAsync();
        var entries = new List<VddkEntry>(80_000);
        for (var i = 0; i < 80_000; i++)
        {
            entries.Add(new VddkEntry($"vmware-vix-disklib-distrib/doc/html/page{i:D6}-\u2028\u0022quoted\u0022.html", VddkEntryKind.File, 0x1A4, Time, i, null));
        }
        var contents = new VddkArchiveContents("8.0.1", "21562716", entries, Time, 0);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var storing = cache.StoreAsync(Key("huge"), layer, contents, CancellationToken.None);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(storing.IsCompleted, "stored on the calling thread, so that its allocations are counted");
        await storing;

        var written = new DirectoryInfo(_temp.Sub("cache")).GetFiles("*.json").Single().Length;
        Assert.True(written > 10_000_000, $"the entry is {written} bytes");
        Assert.True(allocated < 4_000_000, $"{allocated} bytes allocated to store a {written}-byte entry");
        var hit = await cache.TryGetAsync(Key("huge"), CancellationToken.None);
        Assert.NotNull(hit);
        Assert.Equal(entries, hit.Contents.Entries);
    }

    [Fact]
    public async Task The_file_hash_is_its_sha256()
    {
        var path = Path.Combine(_temp.Path, "archive.bin");
        var bytes = Bytes("hash me", 300_000);
        await File.WriteAllBytesAsync(path, bytes);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)), (await LayerCache.HashFileAsync(path, CancellationToken.None)).Value);
    }
}
