using System.Security.Cryptography;
using VddkBuild.Archive;
using VddkBuild.Images;
using VddkBuild.Layers;
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
    public async Task A_changed_or_missing_layer_file_is_a_miss_and_drops_the_entry()
    {
        var directory = _temp.Sub("cache");
        var cache = new LayerCache(directory);
        var layer = await LayerAsync();
        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);

        File.SetLastWriteTimeUtc(layer.FilePath, DateTime.UtcNow.AddMinutes(5));
        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None));
        Assert.Empty(Directory.GetFiles(directory));

        await cache.StoreAsync(Key("a"), layer, Contents([.. Sample()]), CancellationToken.None);
        File.Delete(layer.FilePath);
        Assert.Null(await cache.TryGetAsync(Key("a"), CancellationToken.None));
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
    public async Task The_file_hash_is_its_sha256()
    {
        var path = Path.Combine(_temp.Path, "archive.bin");
        var bytes = Bytes("hash me", 300_000);
        await File.WriteAllBytesAsync(path, bytes);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)), (await LayerCache.HashFileAsync(path, CancellationToken.None)).Value);
    }
}
