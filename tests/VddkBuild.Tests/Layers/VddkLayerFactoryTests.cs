using System.IO.Compression;
using VddkBuild.Archive;
using VddkBuild.Layers;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Layers;

public sealed class VddkLayerFactoryTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static Task<VddkLayer> MakeAsync(string archive, string work, RecordingBuildLog log, LayerWriterOptions? options = null, bool useCache = true) =>
        VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, options ?? new LayerWriterOptions(), work, log, CancellationToken.None, useCache);

    [Fact]
    public async Task The_second_build_of_the_same_archive_reuses_the_layer_and_repeats_the_warnings()
    {
        // No build number in the name: the reader warns, and the cached build must warn the same way.
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small with { FileNameStyle = SampleFileNameStyle.WithoutBuildNumber });
        var work = _temp.Sub("work");
        var firstLog = new RecordingBuildLog();
        var first = await MakeAsync(archive, work, firstLog);
        var secondLog = new RecordingBuildLog();
        var second = await MakeAsync(archive, work, secondLog);

        Assert.Equal(LayerOrigin.Archive, first.Origin); // the sample is written like VMware's archives
        Assert.Equal(LayerOrigin.Cache, second.Origin);
        Assert.Equal(first.Layer, second.Layer);
        Assert.Equal(first.Contents.Version, second.Contents.Version);
        Assert.Equal(first.Contents.Entries, second.Contents.Entries);
        Assert.NotEmpty(firstLog.Warnings(ErrorCodes.BuildNumberUnknown));
        Assert.Equal(firstLog.Warnings(ErrorCodes.BuildNumberUnknown), secondLog.Warnings(ErrorCodes.BuildNumberUnknown));
    }

    [Fact]
    public async Task A_changed_archive_or_setting_writes_a_new_layer()
    {
        var directory = _temp.Sub("in");
        var archive = SampleVddkArchive.WriteTo(directory, SampleVddkArchiveOptions.Small);
        var work = _temp.Sub("work");
        var first = await MakeAsync(archive, work, new RecordingBuildLog());

        var epoch = await MakeAsync(archive, work, new RecordingBuildLog(), new LayerWriterOptions { SourceDateEpoch = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        Assert.Equal(LayerOrigin.Written, epoch.Origin);
        Assert.NotEqual(first.Layer.DiffId, epoch.Layer.DiffId);

        SampleVddkArchive.Write(archive, SampleVddkArchiveOptions.Small with { Seed = 99 });
        var changed = await MakeAsync(archive, work, new RecordingBuildLog());
        Assert.Equal(LayerOrigin.Archive, changed.Origin);
        Assert.NotEqual(first.Layer.Descriptor.Digest, changed.Layer.Descriptor.Digest);
    }

    [Fact]
    public async Task Temporary_layer_files_of_killed_builds_are_deleted_but_not_those_in_use_or_recent()
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small);
        var work = _temp.Sub("work");
        var layers = Directory.CreateDirectory(Path.Combine(work, "layers")).FullName;
        string Leftover(string name, TimeSpan age)
        {
            var path = Path.Combine(layers, name);
            File.WriteAllBytes(path, new byte[1000]);
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
            return path;
        }
        var killedWriter = Leftover(".layer-0123456789abcdef0123456789abcdef.tar.gz.tmp", TimeSpan.FromHours(2));
        var killedCopy = Leftover(".archive-layer-0123456789abcdef0123456789abcdef.tar.gz.tmp", TimeSpan.FromDays(3));
        var recent = Leftover(".layer-fedcba9876543210fedcba9876543210.tar.gz.tmp", TimeSpan.FromMinutes(5));
        var held = Leftover(".archive-layer-fedcba9876543210fedcba9876543210.tar.gz.tmp", TimeSpan.FromHours(2));
        var someoneElses = Leftover(".notes.tar.gz.tmp", TimeSpan.FromDays(3));
        var log = new RecordingBuildLog();

        // A build still writing holds its file open (shared lock), however old its last write.
        using (new FileStream(held, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete))
        {
            await MakeAsync(archive, work, log);
        }

        Assert.False(File.Exists(killedWriter));
        Assert.False(File.Exists(killedCopy));
        Assert.True(File.Exists(recent));
        Assert.True(File.Exists(held));
        Assert.True(File.Exists(someoneElses));
        Assert.Contains(log.Lines, l => l.Message.Contains(killedWriter, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Temporary_cache_entries_and_memos_of_killed_builds_are_deleted_but_not_recent_ones_or_other_names()
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small);
        var work = _temp.Sub("work");
        var cache = Directory.CreateDirectory(Path.Combine(work, "layer-cache")).FullName;
        var memos = Directory.CreateDirectory(Path.Combine(cache, "archives")).FullName;
        string Leftover(string folder, string name, TimeSpan age)
        {
            var path = Path.Combine(folder, name);
            File.WriteAllBytes(path, new byte[100]);
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
            return path;
        }
        var entry = new string('a', 64) + ".json";
        var killedEntry = Leftover(cache, $".{entry}.0123456789abcdef0123456789abcdef.tmp", TimeSpan.FromHours(2));
        var killedMemo = Leftover(memos, ".archive-0123456789abcdef0123456789abcdef.json.fedcba9876543210fedcba9876543210.tmp", TimeSpan.FromDays(3));
        var recent = Leftover(cache, $".{entry}.fedcba9876543210fedcba9876543210.tmp", TimeSpan.FromMinutes(5));
        var someoneElses = Leftover(cache, ".notes.json.tmp", TimeSpan.FromDays(3));
        var log = new RecordingBuildLog();

        var made = await MakeAsync(archive, work, log);
        await made.Recorded;

        Assert.False(File.Exists(killedEntry));
        Assert.False(File.Exists(killedMemo));
        Assert.True(File.Exists(recent));
        Assert.True(File.Exists(someoneElses));
        // The records this build wrote went through the same temporary names and left none.
        Assert.Equal([recent, someoneElses], Directory.GetFiles(cache, ".*").Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetFiles(memos, ".*"));
        Assert.Single(Directory.GetFiles(cache, "*.json"));
    }

    [Fact]
    public async Task Without_the_cache_every_build_writes_the_same_layer()
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small);
        var work = _temp.Sub("work");
        var normal = new LayerWriterOptions { UseArchiveAsLayer = false };
        var first = await MakeAsync(archive, work, new RecordingBuildLog(), normal, useCache: false);
        var second = await MakeAsync(archive, work, new RecordingBuildLog(), normal, useCache: false);
        Assert.Equal(LayerOrigin.Written, second.Origin);
        Assert.Equal(first.Layer, second.Layer);
        Assert.False(Directory.Exists(Path.Combine(work, "layer-cache")));
    }

    [Fact]
    public async Task An_archive_that_is_already_the_layer_is_used_as_it_is()
    {
        var sample = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small);
        var written = await MakeAsync(sample, _temp.Sub("first"), new RecordingBuildLog(), useCache: false);
        var canonical = Path.Combine(_temp.Sub("canonical"), Path.GetFileName(sample));
        await using (var input = new GZipStream(File.OpenRead(written.Layer.FilePath), CompressionMode.Decompress))
        await using (var output = new GZipStream(File.Create(canonical), CompressionLevel.Optimal))
        {
            await input.CopyToAsync(output);
        }

        var layer = await MakeAsync(canonical, _temp.Sub("work"), new RecordingBuildLog());

        Assert.Equal(LayerOrigin.Archive, layer.Origin);
        Assert.Equal(written.Layer.DiffId, layer.Layer.DiffId);
        Assert.Equal(await File.ReadAllBytesAsync(canonical), await File.ReadAllBytesAsync(layer.Layer.FilePath));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // modes are a Unix notion
    public async Task A_directory_listed_after_its_children_has_its_own_mode_and_time_in_the_written_layer()
    {
        var time = new DateTimeOffset(2001, 9, 9, 1, 46, 40, TimeSpan.Zero);
        var archive = Path.Combine(_temp.Sub("in"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        new VddkArchiveBuilder().AddMinimalVddk().AddFile(VddkArchiveBuilder.Distrib("doc/a.txt"), "a").AddDirectory(VddkArchiveBuilder.Distrib("doc"), 0x1C0, time).Write(archive);
        var made = await MakeAsync(archive, _temp.Sub("work"), new RecordingBuildLog(), useCache: false);

        // What GNU tar and container runtimes do with two headers for one directory: the last one's metadata stays.
        var tree = _temp.Sub("tree");
        CliTool.Run("tar", "-xzf", made.Layer.FilePath, "-C", tree);
        var doc = Path.Combine(tree, VddkArchiveBuilder.Distrib("doc"));
        Assert.Equal((UnixFileMode)0x1C5, File.GetUnixFileMode(doc)); // 0700 plus o+rx
        Assert.Equal(time.UtcDateTime, Directory.GetLastWriteTimeUtc(doc));
        Assert.True(File.Exists(Path.Combine(doc, "a.txt")));
    }

    public static TheoryData<bool, string> LeftUnderTheLayerName => new()
    {
        { true, "corrupt" }, { false, "corrupt" }, // the archive's own gzip as the layer; the written layer
        { true, "folder" }, { false, "folder" },
    };

    /// <summary>
    /// Whatever is under the layer's content-addressed name when a build publishes it (a file corrupted in place with
    /// its size and mtime kept, a folder) is replaced by the layer just made and checked, never taken for it.
    /// </summary>
    [Theory]
    [MemberData(nameof(LeftUnderTheLayerName))]
    public async Task What_is_under_the_layer_name_is_replaced_by_the_layer_just_made(bool useArchiveAsLayer, string what)
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small);
        var options = new LayerWriterOptions { UseArchiveAsLayer = useArchiveAsLayer };
        var first = await MakeAsync(archive, _temp.Sub("first"), new RecordingBuildLog(), options, useCache: false);
        var good = await File.ReadAllBytesAsync(first.Layer.FilePath);
        var work = _temp.Sub("work");
        var stale = Path.Combine(work, "layers", Path.GetFileName(first.Layer.FilePath));
        Directory.CreateDirectory(Path.GetDirectoryName(stale)!);
        if (what == "corrupt")
        {
            var bad = good.ToArray();
            bad[bad.Length / 2] ^= 0xff;
            await File.WriteAllBytesAsync(stale, bad);
        }
        else
        {
            Directory.CreateDirectory(Path.Combine(stale, "inside"));
        }

        var made = await MakeAsync(archive, work, new RecordingBuildLog(), options);

        Assert.Equal(stale, made.Layer.FilePath);
        Assert.Equal(good, await File.ReadAllBytesAsync(stale));
        Assert.Equal(first.Layer.Descriptor, made.Layer.Descriptor);
        Assert.Empty(Directory.GetFiles(Path.Combine(work, "layers"), "*.tmp"));
    }

    [Theory]
    [InlineData("an ISO image given by mistake", ErrorCodes.ArchiveFormatUnsupported)]
    [InlineData("", ErrorCodes.NotAVddk)] // all zeros: a tar that ends before its first entry
    [InlineData("\u001f\u008b\u0008\u0000\u0000\u0000\u0000\u0000\u0000\u0003 no deflate data", ErrorCodes.ArchiveCorrupt)]
    public async Task A_huge_file_that_is_no_vddk_is_refused_from_its_first_bytes_without_reading_all_of_it_for_the_cache(string head, string code)
    {
        // 8 GiB, sparse: its sha256 alone takes tens of seconds, which the build spent before reporting what the
        // first bytes already showed.
        var path = Path.Combine(_temp.Sub("in"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        using (var file = new FileStream(path, FileMode.CreateNew))
        {
            file.Write(head.Select(c => (byte)c).ToArray());
            file.SetLength(8L << 30);
        }
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(8));

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            VddkLayerFactory.MakeAsync(path, VddkArchiveReadOptions.Default, new LayerWriterOptions(), _temp.Sub("work"), new RecordingBuildLog(), bound.Token));

        Assert.Equal(code, error.Code);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_temp.Path, "work", "layers")));
    }

    [Fact]
    public async Task A_missing_archive_is_reported_with_its_code()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() => MakeAsync(Path.Combine(_temp.Path, "none.tar.gz"), _temp.Sub("work"), new RecordingBuildLog()));
        Assert.Equal(ErrorCodes.ArchiveNotFound, error.Code);
    }
}

/// <summary>The intermediate folder on a small tmpfs, as CI machines have it (needs root, like the integration tests).</summary>
public sealed class VddkLayerFactoryFullDiskTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose()
    {
        CliToolOrNothing("umount", _temp.Sub("work"));
        _temp.Dispose();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_full_intermediate_folder_is_VDDK2007_leaves_nothing_and_the_next_build_succeeds(bool useArchiveAsLayer)
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small with { TargetUnpackedBytes = 8_000_000 });
        var work = _temp.Sub("work");
        CliTool.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", work);
        var options = new LayerWriterOptions { UseArchiveAsLayer = useArchiveAsLayer };

        var ex = await Assert.ThrowsAsync<VddkException>(() =>
            VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, options, work, new RecordingBuildLog(), CancellationToken.None));
        Assert.Equal(ErrorCodes.OutputWriteFailed, ex.Code);
        Assert.Contains("No space left on device", ex.Message);
        // Where, what it has and what it needs (the layer is about as large as the archive), and which property moves it.
        Assert.Matches($@"The file system of '{System.Text.RegularExpressions.Regex.Escape(Path.Combine(work, "layers"))}' has [0-9.]+ (KiB|MiB) free; this needs about {System.Text.RegularExpressions.Regex.Escape(VddkBuild.IO.DiskSpace.Size(new FileInfo(archive).Length))}\.", ex.Message);
        Assert.Contains("set VddkIntermediateDirectory to a folder on a larger file system", ex.Message);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(work, "layers")));

        CliTool.Run("mount", "-o", "remount,size=64m", work);
        var layer = await VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, options, work, new RecordingBuildLog(), CancellationToken.None);
        Assert.NotEqual(LayerOrigin.Cache, layer.Origin);
        Assert.Equal(layer.Layer.Descriptor.Size, new FileInfo(layer.Layer.FilePath).Length);
        CliTool.Run("gzip", "-t", layer.Layer.FilePath);
    }

    [Fact]
    public async Task A_read_only_layer_folder_still_gives_the_cached_layer_when_the_archive_must_be_hashed_again()
    {
        // Large enough that its hash takes longer than the reading needs to find the layer folder read-only.
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small with { TargetUnpackedBytes = 64_000_000 });
        var work = _temp.Sub("work");
        var first = await VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, new LayerWriterOptions(), work, new RecordingBuildLog(), CancellationToken.None);
        // No memo (a fresh file is never remembered; one written anyway is removed): the archive is hashed again and its reading starts alongside.
        if (Directory.Exists(Path.Combine(work, "layer-cache", "archives")))
        {
            Directory.Delete(Path.Combine(work, "layer-cache", "archives"), recursive: true);
        }
        var layers = Path.Combine(work, "layers");
        CliTool.Run("mount", "--bind", layers, layers);
        try
        {
            CliTool.Run("mount", "-o", "remount,bind,ro", layers);

            var second = await VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, new LayerWriterOptions(), work, new RecordingBuildLog(), CancellationToken.None);

            Assert.Equal(LayerOrigin.Cache, second.Origin);
            Assert.Equal(first.Layer, second.Layer);
        }
        finally
        {
            CliTool.Run("umount", layers);
        }
    }

    private static void CliToolOrNothing(string fileName, string arg)
    {
        try
        {
            using var process = System.Diagnostics.Process.Start(fileName, [arg]);
            process.WaitForExit();
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }
}
