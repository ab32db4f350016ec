using System.Text.Json.Nodes;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Tests.Layers;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Images;

public sealed class OciArchiveWriterTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly TestLayout _layout;

    public OciArchiveWriterTests() => _layout = new TestLayout(_temp.Sub("base"));

    public void Dispose() => _temp.Dispose();

    private static readonly ImageSettings Settings = new()
    {
        VddkVersion = "8.0.1",
        VddkBuildNumber = "21562716",
        Created = new DateTimeOffset(2023, 3, 29, 10, 15, 42, TimeSpan.Zero),
    };

    /// <summary>The whole flow from entries to an archive, in its own folder so two runs share nothing.</summary>
    private async Task<(BuiltImage Image, string Archive)> BuildAsync(string name, IImageSource source, params string[] tags)
    {
        var folder = _temp.Sub(name);
        var layer = await VddkEntries.WriteLayerAsync(Path.Combine(folder, "layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var archive = Path.Combine(folder, "out", "vddk.tar");
        await OciArchiveWriter.WriteAsync(image, source, archive, tags, CancellationToken.None);
        return (image, archive);
    }

    private OciLayoutSource Base()
    {
        if (!File.Exists(Path.Combine(_layout.Root, "index.json")))
        {
            _layout.WriteIndex(false, (_layout.AddImage(docker: true), "9"));
        }
        return new OciLayoutSource(_layout.Root, "9");
    }

    [Fact]
    public async Task Two_builds_give_byte_identical_archives_configs_and_manifests()
    {
        var (first, firstArchive) = await BuildAsync("one", Base(), "8.0.1", "latest");
        var (second, secondArchive) = await BuildAsync("two", Base(), "8.0.1", "latest");

        Assert.Equal(first.ConfigBytes, second.ConfigBytes);
        Assert.Equal(first.ManifestBytes, second.ManifestBytes);
        Assert.Equal(File.ReadAllBytes(first.VddkLayer.FilePath), File.ReadAllBytes(second.VddkLayer.FilePath));
        Assert.Equal(File.ReadAllBytes(firstArchive), File.ReadAllBytes(secondArchive));
    }

    [Fact]
    public async Task Gnu_tar_lists_a_sorted_layout_owned_by_root_with_fixed_modes()
    {
        var (image, archive) = await BuildAsync("a", Base(), "latest");
        var (listing, _) = CliTool.Run("tar", "--numeric-owner", "--full-time", "-tvf", archive);
        var lines = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var names = lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]).ToList();

        var blobNames = image.Layers.Select(l => l.Digest).Append(image.ConfigDescriptor.Digest).Append(image.Digest)
            .Select(d => $"blobs/sha256/{d.Hex}").Order(StringComparer.Ordinal);
        Assert.Equal(["blobs/", "blobs/sha256/", .. blobNames, "index.json", "oci-layout"], names);
        Assert.All(lines, l => Assert.Contains(" 0/0 ", l, StringComparison.Ordinal));
        Assert.All(lines, l => Assert.Contains(" 1970-01-01 00:00:00 ", l, StringComparison.Ordinal));
        Assert.All(lines.Where(l => l.StartsWith('d')), l => Assert.StartsWith("drwxr-xr-x ", l, StringComparison.Ordinal));
        Assert.All(lines.Where(l => !l.StartsWith('d')), l => Assert.StartsWith("-rw-r--r-- ", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_extracted_layout_is_consistent_index_to_manifest_to_blobs()
    {
        var (image, archive) = await BuildAsync("a", Base(), "8.0.1", "latest");
        var dir = _temp.Sub("x");
        CliTool.Run("tar", "-xf", archive, "-C", dir);

        foreach (var blob in Directory.GetFiles(Path.Combine(dir, "blobs", "sha256")))
        {
            Assert.Equal("sha256:" + Path.GetFileName(blob), TestLayout.Sha256(File.ReadAllBytes(blob)));
        }
        Assert.Equal("{\"imageLayoutVersion\":\"1.0.0\"}", File.ReadAllText(Path.Combine(dir, "oci-layout")));
        var index = JsonNode.Parse(File.ReadAllBytes(Path.Combine(dir, "index.json")))!;
        Assert.Equal(MediaTypes.OciIndex, (string?)index["mediaType"]);
        var entries = index["manifests"]!.AsArray();
        Assert.Equal(["8.0.1", "latest"], entries.Select(e => (string)e!["annotations"]!["org.opencontainers.image.ref.name"]!));
        Assert.All(entries, e => Assert.Equal(image.Digest.Value, (string?)e!["digest"]));
        Assert.All(entries, e => Assert.Equal(image.ManifestBytes.Length, (long)e!["size"]!));

        var manifest = OciJson.Deserialize<ImageManifest>(File.ReadAllBytes(Path.Combine(dir, "blobs", "sha256", image.Digest.Hex)), "manifest");
        foreach (var descriptor in manifest.Layers.Append(manifest.Config))
        {
            Assert.Equal(descriptor.Size, new FileInfo(Path.Combine(dir, "blobs", "sha256", descriptor.Digest.Hex)).Length);
        }
        var (diff, _) = CliTool.Run("gzip", "-dc", Path.Combine(dir, "blobs", "sha256", image.VddkLayer.Descriptor.Digest.Hex));
        Assert.NotEmpty(diff);
    }

    [Fact]
    public async Task The_archive_reads_back_as_a_base_image_source()
    {
        var (image, archive) = await BuildAsync("a", Base(), "latest");
        await using var source = new OciArchiveSource(archive, "latest");
        var resolved = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);

        Assert.Equal(image.Digest, resolved.ManifestDescriptor.Digest);
        Assert.Equal(image.ConfigBytes, resolved.ConfigBytes);
        foreach (var layer in resolved.Layers)
        {
            await using var stream = await source.OpenBlobAsync(layer, CancellationToken.None);
            await stream.CopyToAsync(Stream.Null); // verifies digest and size
        }
    }

    [Fact]
    public async Task A_tampered_base_blob_fails_with_VDDK2006_and_leaves_no_file()
    {
        var source = Base();
        var resolved = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        var path = _layout.BlobPath(resolved.Layers[1].Digest);
        var bytes = File.ReadAllBytes(path);
        bytes[20] ^= 1;
        File.WriteAllBytes(path, bytes);

        var ex = await Assert.ThrowsAsync<VddkException>(() => BuildAsync("a", source, "latest"));
        Assert.Equal(ErrorCodes.BlobDigestMismatch, ex.Code);
        Assert.Empty(Directory.GetFiles(Path.Combine(_temp.Path, "a", "out")));
    }

    [Fact]
    public async Task Temporary_archives_of_killed_builds_of_the_same_output_are_deleted_but_not_those_in_use_recent_or_of_other_files()
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var outDir = _temp.Sub("out");
        string Leftover(string name, TimeSpan age)
        {
            var path = Path.Combine(outDir, name);
            File.WriteAllBytes(path, new byte[1000]);
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
            return path;
        }
        var killed = Leftover(".vddk-8.0.1.oci.tar.0123456789abcdef0123456789abcdef.tmp", TimeSpan.FromHours(2));
        var recent = Leftover(".vddk-8.0.1.oci.tar.fedcba9876543210fedcba9876543210.tmp", TimeSpan.FromMinutes(5));
        var held = Leftover(".vddk-8.0.1.oci.tar.00000000000000000000000000000000.tmp", TimeSpan.FromDays(1));
        var otherOutput = Leftover(".vddk-7.0.3.oci.tar.0123456789abcdef0123456789abcdef.tmp", TimeSpan.FromDays(3));
        var notOurName = Leftover(".vddk-8.0.1.oci.tar.backup.tmp", TimeSpan.FromDays(3));
        var longerName = Leftover(".vddk-8.0.1.oci.tar.0123456789abcdef0123456789abcdef0.tmp", TimeSpan.FromDays(3));
        var log = new RecordingBuildLog();

        // A build still writing holds its file open (the writer opens it exclusively), however old its last write.
        using (new FileStream(held, FileMode.Open, FileAccess.Write, FileShare.None))
        {
            await OciArchiveWriter.WriteAsync(image, source, Path.Combine(outDir, "vddk-8.0.1.oci.tar"), ["8.0.1"], CancellationToken.None, log);
        }

        Assert.False(File.Exists(killed));
        Assert.True(File.Exists(recent));
        Assert.True(File.Exists(held));
        Assert.True(File.Exists(otherOutput));
        Assert.True(File.Exists(notOurName));
        Assert.True(File.Exists(longerName));
        Assert.True(File.Exists(Path.Combine(outDir, "vddk-8.0.1.oci.tar")));
        Assert.Contains(log.Lines, l => l.Message.Contains(killed, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(".x.tar.0123456789abcdef0123456789abcdef.tmp", "x.tar", true)]
    [InlineData(".x.tar.0123456789ABCDEF0123456789ABCDEF.tmp", "x.tar", false)]
    [InlineData(".x.tar.0123456789abcdef0123456789abcdef.tmp", "y.tar", false)]
    [InlineData(".y.x.tar.0123456789abcdef0123456789abcdef.tmp", "x.tar", false)]
    [InlineData(".x.tar.0123456789abcdef0123456789abcdeg.tmp", "x.tar", false)]
    [InlineData("x.tar.0123456789abcdef0123456789abcdef.tmp", "x.tar", false)]
    public void Temporary_names_are_recognised_only_for_their_own_output(string name, string output, bool ours)
    {
        Assert.Equal(ours, OciArchiveWriter.IsTemporaryName(name, output));
        Assert.True(OciArchiveWriter.IsTemporaryName(OciArchiveWriter.TemporaryName(output), output));
    }

    [Fact]
    public async Task A_full_file_system_is_VDDK2007_saying_what_is_free_and_needed_and_leaves_no_file_and_the_next_write_succeeds()
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var outDir = _temp.Sub("out");
        CliTool.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", outDir);
        try
        {
            var filler = Path.Combine(outDir, "filler");
            FillLeaving(filler, outDir, 8 * 1024);
            var archive = Path.Combine(outDir, "vddk.oci.tar");

            var ex = await Assert.ThrowsAsync<VddkException>(() => OciArchiveWriter.WriteAsync(image, source, archive, ["8.0.1"], CancellationToken.None));

            Assert.Equal(ErrorCodes.OutputWriteFailed, ex.Code);
            Assert.Matches($@"The file system of '{System.Text.RegularExpressions.Regex.Escape(outDir)}' has [0-9.]+ (KiB|MiB) free; this needs about [0-9.]+ (KiB|MiB)\. Free space there, or set VddkImageArchive", ex.Message);
            Assert.Equal([filler], Directory.GetFileSystemEntries(outDir));

            File.Delete(filler);
            await OciArchiveWriter.WriteAsync(image, source, archive, ["8.0.1"], CancellationToken.None);
            Assert.Equal([archive], Directory.GetFileSystemEntries(outDir));
            // The size it said is the archive's real size, near enough.
            var said = System.Text.RegularExpressions.Regex.Match(ex.Message, @"needs about ([0-9.]+) (KiB|MiB)");
            var bytes = double.Parse(said.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * (said.Groups[2].Value == "KiB" ? 1024 : 1024 * 1024);
            Assert.InRange(bytes / new FileInfo(archive).Length, 0.9, 1.25);
        }
        finally
        {
            CliTool.Run("umount", outDir);
        }
    }

    [Fact]
    public async Task A_symlink_at_the_output_is_followed_so_the_file_it_names_is_replaced_and_the_link_stays()
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var (outDir, shared) = (_temp.Sub("out"), _temp.Sub("shared"));
        var existing = Path.Combine(shared, "vddk.oci.tar");
        await File.WriteAllTextAsync(existing, "the previous image");
        var link = Path.Combine(outDir, "latest.oci.tar");
        File.CreateSymbolicLink(link, existing);
        var dangling = Path.Combine(outDir, "next.oci.tar");
        File.CreateSymbolicLink(dangling, Path.Combine(shared, "next.oci.tar"));

        await OciArchiveWriter.WriteAsync(image, source, link, ["8.0.1"], CancellationToken.None);
        await OciArchiveWriter.WriteAsync(image, source, dangling, ["8.0.1"], CancellationToken.None);

        Assert.Equal(existing, new FileInfo(link).LinkTarget);
        Assert.Equal(Path.Combine(shared, "next.oci.tar"), new FileInfo(dangling).LinkTarget);
        Assert.True(new FileInfo(existing).Length > 1024);
        Assert.Equal(await File.ReadAllBytesAsync(existing), await File.ReadAllBytesAsync(Path.Combine(shared, "next.oci.tar")));
        Assert.Equal(["latest.oci.tar", "next.oci.tar"], Directory.GetFileSystemEntries(outDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_directory_or_a_symlink_loop_at_the_output_is_VDDK2007_saying_which()
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var outDir = _temp.Sub("out");
        var folder = Directory.CreateDirectory(Path.Combine(outDir, "images")).FullName;
        File.CreateSymbolicLink(Path.Combine(outDir, "a"), Path.Combine(outDir, "b"));
        File.CreateSymbolicLink(Path.Combine(outDir, "b"), Path.Combine(outDir, "a"));

        var directory = await Assert.ThrowsAsync<VddkException>(() => OciArchiveWriter.WriteAsync(image, source, folder, ["8.0.1"], CancellationToken.None));
        var loop = await Assert.ThrowsAsync<VddkException>(() => OciArchiveWriter.WriteAsync(image, source, Path.Combine(outDir, "a"), ["8.0.1"], CancellationToken.None));

        Assert.Equal(ErrorCodes.OutputWriteFailed, directory.Code);
        Assert.Contains("it is a directory. Set VddkImageArchive to a file path", directory.Message);
        Assert.Equal(ErrorCodes.OutputWriteFailed, loop.Code);
        Assert.Contains("symbolic link that cannot be followed", loop.Message);
        Assert.Empty(Directory.EnumerateFiles(folder));
    }

    /// <summary>Writes <paramref name="file"/> until its file system has about <paramref name="leave"/> bytes free.</summary>
    internal static void FillLeaving(string file, string folder, long leave)
    {
        using var stream = File.Create(file);
        var chunk = new byte[4096];
        while (new DriveInfo(folder).AvailableFreeSpace > leave)
        {
            stream.Write(chunk);
            stream.Flush();
        }
    }

    [Fact]
    public async Task Cancellation_leaves_no_file()
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var outDir = _temp.Sub("out");
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => OciArchiveWriter.WriteAsync(image, source, Path.Combine(outDir, "x.tar"), ["latest"], cts.Token));
        Assert.Empty(Directory.GetFiles(outDir));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("-leading")]
    [InlineData("a//b")]
    public async Task Invalid_tags_are_refused(string tag)
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var ex = await Assert.ThrowsAsync<VddkException>(() => OciArchiveWriter.WriteAsync(image, source, Path.Combine(_temp.Path, "x.tar"), [tag], CancellationToken.None));
        Assert.Equal(ErrorCodes.TagInvalid, ex.Code);
        Assert.False(File.Exists(Path.Combine(_temp.Path, "x.tar")));
    }

    [Fact]
    public async Task The_layout_writer_adds_tags_to_a_folder_that_reads_back()
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var dir = Path.Combine(_temp.Path, "layout-out");

        await OciLayoutWriter.WriteAsync(image, source, dir, ["8.0.1"], CancellationToken.None);
        await OciLayoutWriter.WriteAsync(image, source, dir, ["8.0.1", "latest"], CancellationToken.None);

        var index = OciJson.Deserialize<ImageIndex>(File.ReadAllBytes(Path.Combine(dir, "index.json")), "index");
        Assert.Equal(["8.0.1", "latest"], index.Manifests.Select(m => m.Annotations!["org.opencontainers.image.ref.name"]));
        Assert.Empty(Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories));
        await using var back = new OciLayoutSource(dir, "latest");
        Assert.Equal(image.Digest, (await back.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None)).ManifestDescriptor.Digest);
    }

    [Fact]
    public async Task The_layout_writer_rewrites_a_blob_corrupted_in_place_with_its_size_kept()
    {
        var source = Base();
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        var image = ImageBuilder.Build(await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None), layer, Settings);
        var dir = Path.Combine(_temp.Path, "layout-out");
        await OciLayoutWriter.WriteAsync(image, source, dir, ["8.0.1"], CancellationToken.None);
        var blob = Path.Combine(dir, OciLayoutResolver.BlobPath(layer.Descriptor.Digest));
        var good = await File.ReadAllBytesAsync(blob);
        var bad = good.ToArray();
        bad[bad.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(blob, bad);

        await OciLayoutWriter.WriteAsync(image, source, dir, ["8.0.1"], CancellationToken.None);

        Assert.Equal(good, await File.ReadAllBytesAsync(blob));
        Assert.Empty(Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }
}
