using System.Security.Cryptography;
using System.Text.RegularExpressions;
using VddkBuild.Archive;
using VddkBuild.Layers;
using static VddkBuild.Tests.Layers.VddkEntries;

namespace VddkBuild.Tests.Layers;

public sealed class LayerWriterTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Two_builds_of_the_same_entries_give_byte_identical_layers()
    {
        var first = await WriteLayerAsync(_temp.Sub("a"), Sample());
        var second = await WriteLayerAsync(_temp.Sub("b"), Sample());

        Assert.Equal(File.ReadAllBytes(first.FilePath), File.ReadAllBytes(second.FilePath));
        Assert.Equal(first.Descriptor, second.Descriptor);
        Assert.Equal(first.DiffId, second.DiffId);
    }

    [Fact]
    public async Task Digest_is_sha256_of_the_file_and_diffid_is_sha256_of_gunzip_output()
    {
        var layer = await WriteLayerAsync(_temp.Path, Sample());
        var fileBytes = File.ReadAllBytes(layer.FilePath);

        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(fileBytes)), layer.Descriptor.Digest.Value);
        Assert.Equal(fileBytes.Length, layer.Descriptor.Size);
        Assert.Equal($"sha256-{layer.Descriptor.Digest.Hex}.tar.gz", Path.GetFileName(layer.FilePath));
        Assert.Equal("application/vnd.oci.image.layer.v1.tar+gzip", layer.Descriptor.MediaType);

        var (_, tar) = CliTool.Run("gzip", "-dc", layer.FilePath);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), layer.DiffId.Value);
        CliTool.Run("gzip", "-t", layer.FilePath);
    }

    [Fact]
    public async Task Tar_ends_with_two_zero_blocks_and_has_a_fixed_gzip_header()
    {
        var layer = await WriteLayerAsync(_temp.Path, Sample());
        var gz = File.ReadAllBytes(layer.FilePath);
        Assert.Equal(new byte[] { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 }, gz[..10]);

        var (_, tar) = CliTool.Run("gzip", "-dc", layer.FilePath);
        Assert.Equal(0, tar.Length % 512);
        Assert.All(tar[^1024..], b => Assert.Equal(0, b));
        Assert.NotEqual(new byte[512], tar[^1536..^1024]); // exactly two, the block before is content/header
    }

    [Fact]
    public async Task Gnu_tar_lists_links_modes_owner_and_only_the_vddk_tree()
    {
        var layer = await WriteLayerAsync(_temp.Path, Sample());
        var (listing, _) = CliTool.Run("tar", "--numeric-owner", "-tvzf", layer.FilePath);
        var lines = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(10, lines.Length);
        Assert.All(lines, l => Assert.Contains(" 0/0 ", l));
        var names = lines.Select(l => Regex.Match(l, @"\d\d:\d\d (\S+)").Groups[1].Value).ToList();
        Assert.All(names, n => Assert.StartsWith(R, n));
        Assert.DoesNotContain(names, n => n.StartsWith("./", StringComparison.Ordinal) || n.StartsWith('/') || n.StartsWith("opt", StringComparison.Ordinal));

        Assert.Contains(lines, l => l.StartsWith("drwxr-xr-x ", StringComparison.Ordinal) && l.EndsWith($" {R}/", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("drwx---r-x ", StringComparison.Ordinal) && l.EndsWith($" {R}/lib64/", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("-rw----r-- ", StringComparison.Ordinal) && l.EndsWith($" {R}/lib64/libgcc_s.so.1", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("-rwxr-xr-x ", StringComparison.Ordinal) && l.Contains(" 40000 2023-03-29 10:15 ", StringComparison.Ordinal) && l.EndsWith($" {R}/lib64/libvixDiskLib.so.8.0.1", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("lrwxrwxrwx ", StringComparison.Ordinal) && l.EndsWith($" {R}/lib64/libvixDiskLib.so -> libvixDiskLib.so.8", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.EndsWith($" {R}/lib64/libvixDiskLib.so.8 -> libvixDiskLib.so.8.0.1", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("hrw----r-- ", StringComparison.Ordinal) && l.EndsWith($" {R}/lib64/libgcc_s-copy.so.1 link to {R}/lib64/libgcc_s.so.1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Gnu_tar_extracts_the_tree_with_working_links_and_identical_content()
    {
        var entries = Sample();
        var layer = await WriteLayerAsync(_temp.Sub("layer"), entries);
        var target = _temp.Sub("x");
        CliTool.Run("tar", "-xzf", layer.FilePath, "-C", target);

        foreach (var (entry, content) in entries.Where(e => e.Content is not null))
        {
            Assert.Equal(content, File.ReadAllBytes(Path.Combine(target, entry.Path)));
        }
        var viaChain = File.ReadAllBytes(Path.Combine(target, R, "lib64", "libvixDiskLib.so"));
        Assert.Equal(entries.Single(e => e.Entry.Path.EndsWith("8.0.1", StringComparison.Ordinal)).Content, viaChain);
        Assert.Equal("libvixDiskLib.so.8", new FileInfo(Path.Combine(target, R, "lib64", "libvixDiskLib.so")).LinkTarget);
    }

    [Fact]
    public async Task Source_date_epoch_clamps_newer_mtimes_and_keeps_older_ones()
    {
        var epoch = new DateTimeOffset(2020, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var old = new DateTimeOffset(2019, 6, 1, 0, 0, 0, TimeSpan.Zero);
        var entries = new List<(VddkEntry, byte[]?)>
        {
            Dir(R, 0x1ED),
            FileEntry($"{R}/new.so", 0x1ED, [1, 2, 3]),
            FileEntry($"{R}/old.so", 0x1ED, [4, 5], old),
        };
        var layer = await WriteLayerAsync(_temp.Path, entries, new LayerWriterOptions { SourceDateEpoch = epoch });
        var (listing, _) = CliTool.Run("tar", "--full-time", "-tvzf", layer.FilePath);

        Assert.Contains($"2020-01-02 03:04:05 {R}/new.so", listing, StringComparison.Ordinal);
        Assert.Contains($"2019-06-01 00:00:00 {R}/old.so", listing, StringComparison.Ordinal);
        Assert.Contains($"2020-01-02 03:04:05 {R}/\n", listing, StringComparison.Ordinal);

        var unclamped = await WriteLayerAsync(_temp.Sub("later"), entries, new LayerWriterOptions { SourceDateEpoch = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        var (later, _) = CliTool.Run("tar", "--full-time", "-tvzf", unclamped.FilePath);
        Assert.Contains($"2023-03-29 10:15:42 {R}/new.so", later, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(99)]
    [InlineData(100)]
    [InlineData(101)]
    [InlineData(180)]
    [InlineData(255)]
    [InlineData(256)]
    [InlineData(700)]
    public async Task Long_names_and_link_targets_round_trip_through_gnu_tar(int length)
    {
        var dir = $"{R}/{new string('d', 90)}/{new string('e', 80)}";
        var fileName = Name($"{R}/lib64/", length);
        var linkName = Name($"{R}/lib64/link-", length);
        var linkTarget = string.Concat(Enumerable.Repeat("../lib64/", length / 9 + 1)) + "libz.so.1";
        var hardName = Name($"{R}/lib64/hard-", length);
        var dirName = Name($"{R}/dir-", length);
        var entries = new List<(VddkEntry, byte[]?)>
        {
            Dir(R, 0x1ED),
            Dir($"{R}/lib64", 0x1ED),
            Dir(dir, 0x1ED),
            FileEntry(fileName, 0x1A4, [7, 7, 7]),
            Link(linkName, linkTarget),
            Hardlink(hardName, fileName),
            Dir(dirName, 0x1ED),
            FileEntry(dirName + "/inner", 0x1A4, [8]),
        };
        var layer = await WriteLayerAsync(_temp.Path, entries);
        var (listing, _) = CliTool.Run("tar", "-tvzf", layer.FilePath);

        Assert.Contains($" {fileName}\n", listing, StringComparison.Ordinal);
        Assert.Contains($" {linkName} -> {linkTarget}\n", listing, StringComparison.Ordinal);
        Assert.Contains($" {hardName} link to {fileName}\n", listing, StringComparison.Ordinal);
        Assert.Contains($" {dirName}/\n", listing, StringComparison.Ordinal);
        Assert.Contains($" {dirName}/inner\n", listing, StringComparison.Ordinal);
        Assert.Contains($" {dir}/\n", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("PaxHeader", listing, StringComparison.Ordinal);

        static string Name(string prefix, int total) => prefix + new string('n', Math.Max(1, total - prefix.Length));
    }

    [Fact]
    public async Task Pax_headers_have_a_fixed_name_without_a_process_id()
    {
        var longName = $"{R}/" + new string('x', 300);
        var layer = await WriteLayerAsync(_temp.Path, [Dir(R, 0x1ED), FileEntry(longName, 0x1A4, [1])]);
        var (_, tar) = CliTool.Run("gzip", "-dc", layer.FilePath);
        var text = System.Text.Encoding.ASCII.GetString(tar);

        Assert.Contains("././@PaxHeader", text, StringComparison.Ordinal);
        Assert.Contains($"path={longName}\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("PaxHeaders.", text, StringComparison.Ordinal);
        Assert.DoesNotContain("atime", text, StringComparison.Ordinal);
        Assert.DoesNotContain("ctime", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_parent_directories_are_added_before_their_children()
    {
        var layer = await WriteLayerAsync(_temp.Path, [FileEntry($"{R}/lib64/libz.so.1", 0x1ED, [1, 2])]);
        var (listing, _) = CliTool.Run("tar", "-tzf", layer.FilePath);
        Assert.Equal($"{R}/\n{R}/lib64/\n{R}/lib64/libz.so.1\n", listing);
    }

    [Theory]
    [InlineData("opt/vmware-vix-disklib-distrib/x")]
    [InlineData("/vmware-vix-disklib-distrib/x")]
    [InlineData("vmware-vix-disklib-distrib/../etc/passwd")]
    [InlineData("vmware-vix-disklib-distrib-other/x")]
    [InlineData("./vmware-vix-disklib-distrib/x")]
    public async Task Entries_outside_the_tree_are_refused(string path)
    {
        await using var writer = new LayerWriter(_temp.Path);
        var ex = await Assert.ThrowsAsync<VddkException>(() =>
            writer.WriteEntryAsync(new VddkEntry(path, VddkEntryKind.Directory, 0x1ED, Time, 0, null), null, CancellationToken.None).AsTask());
        Assert.Equal(ErrorCodes.EntryEscapesTree, ex.Code);
    }

    [Fact]
    public async Task A_hardlink_to_an_unknown_entry_is_refused()
    {
        await using var writer = new LayerWriter(_temp.Path);
        await writer.WriteEntryAsync(Dir(R, 0x1ED).Item1, null, CancellationToken.None);
        var (entry, _) = Hardlink($"{R}/a", $"{R}/missing");
        var ex = await Assert.ThrowsAsync<VddkException>(() => writer.WriteEntryAsync(entry, null, CancellationToken.None).AsTask());
        Assert.Equal(ErrorCodes.HardlinkInvalid, ex.Code);
    }

    [Fact]
    public async Task Duplicate_entries_are_refused()
    {
        await using var writer = new LayerWriter(_temp.Path);
        await writer.WriteEntryAsync(Dir(R, 0x1ED).Item1, null, CancellationToken.None);
        var ex = await Assert.ThrowsAsync<VddkException>(() => writer.WriteEntryAsync(Dir(R, 0x1ED).Item1, null, CancellationToken.None).AsTask());
        Assert.Equal(ErrorCodes.DuplicateEntry, ex.Code);
    }

    [Fact]
    public async Task A_synthesised_directory_is_replaced_once_by_the_archives_entry()
    {
        await using var writer = new LayerWriter(_temp.Path);
        await writer.WriteEntryAsync(Dir(R, 0x1ED).Item1, null, CancellationToken.None);
        await writer.WriteEntryAsync(new VddkEntry($"{R}/doc", VddkEntryKind.Directory, 0x1ED, Time, 0, null, Synthesized: true), null, CancellationToken.None);
        await writer.WriteEntryAsync(new VddkEntry($"{R}/doc", VddkEntryKind.Directory, 0x1C0, Time, 0, null), null, CancellationToken.None);
        var ex = await Assert.ThrowsAsync<VddkException>(() => writer.WriteEntryAsync(new VddkEntry($"{R}/doc", VddkEntryKind.Directory, 0x1C0, Time, 0, null), null, CancellationToken.None).AsTask());
        Assert.Equal(ErrorCodes.DuplicateEntry, ex.Code);
    }

    [Fact]
    public async Task Short_file_content_is_reported_as_a_corrupt_archive()
    {
        await using var writer = new LayerWriter(_temp.Path);
        var entry = new VddkEntry($"{R}/a.so", VddkEntryKind.File, 0x1ED, Time, 100, null);
        var ex = await Assert.ThrowsAsync<VddkException>(() => writer.WriteEntryAsync(entry, new MemoryStream(new byte[10]), CancellationToken.None).AsTask());
        Assert.Equal(ErrorCodes.ArchiveCorrupt, ex.Code);
        await Assert.ThrowsAsync<InvalidOperationException>(() => writer.CompleteAsync(CancellationToken.None)); // never published half-written
    }

    [Fact]
    public async Task Disposing_without_completing_leaves_no_file_behind()
    {
        var folder = _temp.Sub("abandoned");
        await using (var writer = new LayerWriter(folder))
        {
            foreach (var (entry, content) in Sample().Take(5))
            {
                await writer.WriteEntryAsync(entry, content is null ? null : new MemoryStream(content), CancellationToken.None);
            }
            Assert.Single(Directory.GetFiles(folder));
        }
        Assert.Empty(Directory.GetFiles(folder));
    }

    [Fact]
    public async Task Completing_only_leaves_the_content_addressed_file_and_a_rebuild_reuses_it()
    {
        var folder = _temp.Sub("out");
        var first = await WriteLayerAsync(folder, Sample());
        var second = await WriteLayerAsync(folder, Sample());
        Assert.Equal(first.FilePath, second.FilePath);
        Assert.Equal([first.FilePath], Directory.GetFiles(folder));
    }

    [Fact]
    public async Task An_empty_input_is_not_a_vddk()
    {
        await using var writer = new LayerWriter(_temp.Path);
        var ex = await Assert.ThrowsAsync<VddkException>(() => writer.CompleteAsync(CancellationToken.None));
        Assert.Equal(ErrorCodes.NotAVddk, ex.Code);
    }

    [Fact]
    public async Task Fastest_and_optimal_levels_give_the_same_diffid_but_different_digests()
    {
        var optimal = await WriteLayerAsync(_temp.Sub("o"), Sample());
        var fastest = await WriteLayerAsync(_temp.Sub("f"), Sample(), new LayerWriterOptions { CompressionLevel = System.IO.Compression.CompressionLevel.Fastest });
        Assert.Equal(optimal.DiffId, fastest.DiffId);
        Assert.NotEqual(optimal.Descriptor.Digest, fastest.Descriptor.Digest);
    }

    [Fact]
    public async Task A_hardlink_to_a_hardlink_is_kept_as_a_link_to_the_given_path()
    {
        var layer = await WriteLayerAsync(_temp.Path,
        [
            Dir(R, 0x1ED),
            FileEntry($"{R}/a", 0x1ED, [1, 2, 3]),
            Hardlink($"{R}/b", $"{R}/a"),
            Hardlink($"{R}/c", $"{R}/b"),
        ]);
        var target = _temp.Sub("x");
        CliTool.Run("tar", "-xzf", layer.FilePath, "-C", target);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(target, R, "c")));
        var (listing, _) = CliTool.Run("tar", "-tvzf", layer.FilePath);
        Assert.Contains($" {R}/c link to {R}/b\n", listing, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancelling_mid_layer_leaves_no_file_behind()
    {
        var folder = _temp.Sub("cancelled");
        using var cts = new CancellationTokenSource();
        await using (var writer = new LayerWriter(folder))
        {
            await writer.WriteEntryAsync(Dir(R, 0x1ED).Item1, null, cts.Token);
            await cts.CancelAsync();
            var (entry, content) = FileEntry($"{R}/big.so", 0x1ED, Bytes("big", 1_000_000));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => writer.WriteEntryAsync(entry, new MemoryStream(content!), cts.Token).AsTask());
        }
        Assert.Empty(Directory.GetFiles(folder));
    }
}
