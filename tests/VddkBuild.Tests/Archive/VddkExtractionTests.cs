using VddkBuild.Archive;
using VddkBuild.TestSupport.Archives;
using static VddkBuild.TestSupport.Archives.VddkArchiveBuilder;

namespace VddkBuild.Tests.Archive;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // modes and hard links are Unix notions
public sealed class VddkExtractionTests
{
    private static readonly SampleVddkArchiveOptions Small = SampleVddkArchiveOptions.Small with { DocumentationPages = 3 };

    private static Task<VddkArchiveContents> Extract(string archive, string target, CancellationToken cancellationToken = default) =>
        VddkExtraction.ExtractAsync(archive, target, VddkArchiveReadOptions.Default, new CollectingLog(), cancellationToken);

    /// <summary>Nothing but the expected entries in the parent folder: no temporary or old folders left behind.</summary>
    private static void AssertNoLeftovers(string parent, params string[] expected) =>
        Assert.Equal(expected.Order(StringComparer.Ordinal), Directory.EnumerateFileSystemEntries(parent).Select(Path.GetFileName).Order(StringComparer.Ordinal));

    [Fact]
    public async Task Extracted_tree_matches_the_archive_kinds_targets_modes_and_times()
    {
        using var temp = new TempFolder();
        var builder = SampleVddkArchive.CreateBuilder(Small)
            .AddDirectory(Distrib("readonly"), 0x16D /* 0555 */, new DateTimeOffset(2021, 5, 6, 7, 8, 9, TimeSpan.Zero))
            .AddFile(Distrib("readonly/inside"), "ro", 0x180 /* 0600 */)
            .AddHardlink(Distrib("lib64/libz.so.1.hard"), Distrib("lib64/libz.so.1"));
        var archive = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        builder.Write(archive);
        var target = temp.File("out");

        var contents = await Extract(archive, target);

        foreach (var entry in contents.Entries)
        {
            var path = Path.Combine(target, entry.Path);
            var info = new FileInfo(path);
            switch (entry.Kind)
            {
                case VddkEntryKind.Directory:
                    Assert.True(Directory.Exists(path), path);
                    Assert.Null(info.LinkTarget);
                    Assert.Equal((UnixFileMode)(entry.Mode | 0x5), File.GetUnixFileMode(path));
                    Assert.Equal(entry.ModificationTime.UtcDateTime, Directory.GetLastWriteTimeUtc(path));
                    break;
                case VddkEntryKind.File:
                    Assert.Null(info.LinkTarget);
                    Assert.Equal(entry.Length, info.Length);
                    Assert.Equal((UnixFileMode)(entry.Mode | 0x4), File.GetUnixFileMode(path));
                    Assert.Equal(entry.ModificationTime.UtcDateTime, File.GetLastWriteTimeUtc(path));
                    break;
                case VddkEntryKind.Symlink:
                    Assert.Equal(entry.LinkTarget, info.LinkTarget);
                    Assert.Equal(entry.ModificationTime.UtcDateTime, info.LastWriteTimeUtc);
                    break;
                case VddkEntryKind.Hardlink:
                    Assert.Null(info.LinkTarget);
                    break;
            }
        }
        Assert.Equal(0x1A4 | 0x4, (int)File.GetUnixFileMode(Path.Combine(target, Distrib("lib64/libgcc_s.so.1"))));
        var resolved = new FileInfo(Path.Combine(target, Distrib("lib64/libvixDiskLib.so"))).ResolveLinkTarget(returnFinalTarget: true);
        Assert.Equal("libvixDiskLib.so.8.0.1", resolved!.Name);
        AssertNoLeftovers(temp.Path, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", "out");
    }

    [Fact]
    public async Task A_mount_point_as_the_target_is_extracted_into_twice_and_keeps_its_own_mode()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(Path.Combine(temp.Path, "in"), Small);
        var volume = Path.Combine(temp.Path, "volume");
        Directory.CreateDirectory(volume);
        Tests.Layers.CliTool.Run("mount", "-t", "tmpfs", "-o", "size=16m,mode=1777", "tmpfs", volume); // a pod's emptyDir
        try
        {
            await Extract(archive, volume);
            await Extract(archive, volume); // replaces the previous tree

            AssertNoLeftovers(volume, EntryPaths.TopFolder);
            Assert.Equal((UnixFileMode)0x3FF, File.GetUnixFileMode(volume)); // still the volume's 1777
            Assert.NotNull(new FileInfo(Path.Combine(volume, Distrib("lib64/libvixDiskLib.so"))).LinkTarget);
        }
        finally
        {
            Tests.Layers.CliTool.Run("umount", volume);
        }
    }

    [Fact]
    public async Task A_symlink_to_a_folder_as_the_target_gets_the_tree_in_that_folder_and_stays_a_link()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(Path.Combine(temp.Path, "in"), Small);
        var real = Directory.CreateDirectory(Path.Combine(temp.Path, "srv", "vddk")).FullName;
        var link = Path.Combine(temp.Path, "extracted");
        File.CreateSymbolicLink(link, real);
        var dangling = Path.Combine(temp.Path, "later");
        File.CreateSymbolicLink(dangling, Path.Combine(temp.Path, "srv", "later"));

        await Extract(archive, link);
        await Extract(archive, dangling);

        Assert.Equal(real, new DirectoryInfo(link).LinkTarget);
        Assert.NotNull(new DirectoryInfo(dangling).LinkTarget);
        AssertNoLeftovers(real, EntryPaths.TopFolder);
        AssertNoLeftovers(Path.Combine(temp.Path, "srv", "later"), EntryPaths.TopFolder);
        AssertNoLeftovers(Path.Combine(temp.Path, "srv"), "later", "vddk");
    }

    [Fact]
    public async Task A_temporary_folder_a_killed_extraction_left_in_the_target_does_not_block_the_next_one()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(Path.Combine(temp.Path, "in"), Small);
        var target = Path.Combine(temp.Path, "out");
        await Extract(archive, target);
        var leftover = Directory.CreateDirectory(Path.Combine(target, $".vddkbuild-{Guid.NewGuid():N}.tmp")).FullName;

        await Extract(archive, target);

        Assert.True(Directory.Exists(Path.Combine(target, EntryPaths.TopFolder)));
        Assert.True(Directory.Exists(leftover)); // not ours to judge: another build may be writing it
    }

    [Fact]
    public async Task A_full_file_system_is_VDDK1015_saying_what_is_free_and_needed_and_the_next_extraction_succeeds()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(Path.Combine(temp.Path, "in"), Small);
        var mount = Path.Combine(temp.Path, "mnt");
        Directory.CreateDirectory(mount);
        Tests.Layers.CliTool.Run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount);
        try
        {
            var filler = Path.Combine(mount, "filler");
            Tests.Images.OciArchiveWriterTests.FillLeaving(filler, mount, 64 * 1024);
            var target = Path.Combine(mount, "x");

            var ex = await Assert.ThrowsAsync<VddkException>(() => Extract(archive, target));

            Assert.Equal(ErrorCodes.ExtractFailed, ex.Code);
            Assert.Matches($@"The file system of '{System.Text.RegularExpressions.Regex.Escape(mount)}' has [0-9.]+ (KiB|MiB) free; this needs about [0-9.]+ (KiB|MiB)\. Free space there, or set VddkExtractDirectory", ex.Message);
            AssertNoLeftovers(mount, "filler");

            File.Delete(filler);
            await Extract(archive, target);
            AssertNoLeftovers(mount, "x");
        }
        finally
        {
            Tests.Layers.CliTool.Run("umount", mount);
        }
    }

    [Fact]
    public async Task A_directory_listed_after_its_children_is_extracted_with_its_own_mode_and_time()
    {
        using var temp = new TempFolder();
        var archive = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        var time = new DateTimeOffset(2001, 9, 9, 1, 46, 40, TimeSpan.Zero);
        new VddkArchiveBuilder().AddMinimalVddk().AddFile(Distrib("doc/a.txt"), "a").AddDirectory(Distrib("doc"), 0x1C0, time).Write(archive);
        var target = Path.Combine(temp.Path, "out");
        await Extract(archive, target);

        var doc = Path.Combine(target, Distrib("doc"));
        Assert.Equal((UnixFileMode)0x1C5, File.GetUnixFileMode(doc)); // 0700 plus o+rx, as in the image
        Assert.Equal(time.UtcDateTime, Directory.GetLastWriteTimeUtc(doc));
    }

    [Fact]
    public async Task Hardlinks_share_their_inode()
    {
        using var temp = new TempFolder();
        var archive = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        new VddkArchiveBuilder { Compression = ArchiveCompression.None }.AddMinimalVddk()
            .AddFile(Distrib("bin64/tool"), "original", 0x1ED)
            .AddHardlink(Distrib("bin64/tool-link"), Distrib("bin64/tool")).Write(archive);
        var target = temp.File("out");
        await Extract(archive, target);

        var original = Path.Combine(target, Distrib("bin64/tool"));
        var link = Path.Combine(target, Distrib("bin64/tool-link"));
        File.SetUnixFileMode(original, File.GetUnixFileMode(original) | UnixFileMode.UserWrite);
        await File.WriteAllTextAsync(original, "changed through the first name");
        Assert.Equal("changed through the first name", await File.ReadAllTextAsync(link));
    }

    [Fact]
    public async Task Existing_extraction_is_replaced_and_nothing_is_left_behind()
    {
        using var temp = new TempFolder();
        var target = temp.File("vddk");
        Directory.CreateDirectory(Path.Combine(target, Top, "stale"));
        var archive = SampleVddkArchive.WriteTo(temp.Path, Small);

        var contents = await Extract(archive, target);

        Assert.False(Directory.Exists(Path.Combine(target, Top, "stale")));
        Assert.True(File.Exists(Path.Combine(target, Distrib($"lib64/libvixDiskLib.so.{contents.Version}"))));
        AssertNoLeftovers(temp.Path, Path.GetFileName(archive), "vddk");
    }

    [Fact]
    public async Task Temporary_trees_of_killed_extractions_to_this_target_are_deleted_but_not_recent_ones_or_other_names()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(temp.Path, Small);
        var target = temp.File("out");
        string Leftover(string name, TimeSpan age)
        {
            // What a killed extraction leaves: a partly written tree under a hidden temporary name.
            var tree = temp.File(name);
            var lib64 = Directory.CreateDirectory(Path.Combine(tree, EntryPaths.TopFolder, "lib64")).FullName;
            File.WriteAllBytes(Path.Combine(lib64, "libvixDiskLib.so.8.0.1"), new byte[1000]);
            foreach (var folder in new[] { lib64, Path.GetDirectoryName(lib64)!, tree })
            {
                Directory.SetLastWriteTimeUtc(folder, DateTime.UtcNow - age);
            }
            return tree;
        }
        var killed = Leftover(".out.vddkbuild-0123456789abcdef0123456789abcdef.tmp", TimeSpan.FromHours(2));
        var killedWhileReplacing = Leftover(".out.vddkbuild-fedcba9876543210fedcba9876543210.old", TimeSpan.FromDays(3));
        var running = Leftover(".out.vddkbuild-00000000000000000000000000000000.tmp", TimeSpan.FromMinutes(5));
        var otherTarget = Leftover(".other.vddkbuild-0123456789abcdef0123456789abcdef.tmp", TimeSpan.FromDays(3));
        var notOurs = Leftover(".out.vddkbuild-notes.tmp", TimeSpan.FromDays(3));
        var log = new CollectingLog();

        await VddkExtraction.ExtractAsync(archive, target, VddkArchiveReadOptions.Default, log, CancellationToken.None);

        Assert.True(Directory.Exists(Path.Combine(target, EntryPaths.TopFolder)));
        Assert.False(Directory.Exists(killed));
        Assert.False(Directory.Exists(killedWhileReplacing));
        Assert.True(Directory.Exists(running));
        Assert.True(Directory.Exists(otherTarget));
        Assert.True(Directory.Exists(notOurs));
    }

    [Fact]
    public async Task Target_holding_other_things_is_refused_untouched_with_VDDK1015()
    {
        using var temp = new TempFolder();
        var target = temp.File("home");
        Directory.CreateDirectory(target);
        await File.WriteAllTextAsync(Path.Combine(target, "notes.txt"), "precious");
        var archive = SampleVddkArchive.WriteTo(temp.Path, Small);

        var error = await Assert.ThrowsAsync<VddkException>(() => Extract(archive, target));

        Assert.Equal(ErrorCodes.ExtractFailed, error.Code);
        Assert.Equal("precious", await File.ReadAllTextAsync(Path.Combine(target, "notes.txt")));
        AssertNoLeftovers(temp.Path, Path.GetFileName(archive), "home");
    }

    [Fact]
    public async Task Bad_archive_creates_no_target_and_leaves_no_temp()
    {
        using var temp = new TempFolder();
        var archive = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        // Valid entries first, so the extractor has written files when the bad one arrives.
        SampleVddkArchive.CreateBuilder(Small).AddSymlink(Distrib("lib64/evil"), "/etc/passwd").Write(archive);
        var target = temp.File("out");

        var error = await Assert.ThrowsAsync<VddkException>(() => Extract(archive, target));

        Assert.Equal(ErrorCodes.SymlinkEscapesTree, error.Code);
        AssertNoLeftovers(temp.Path, Path.GetFileName(archive));
    }

    [Fact]
    public async Task Failure_in_tree_checks_leaves_an_existing_target_untouched()
    {
        using var temp = new TempFolder();
        var target = temp.File("out");
        var good = SampleVddkArchive.WriteTo(temp.Path, Small);
        await Extract(good, target);
        var bad = temp.File("bad.tar.gz");
        new VddkArchiveBuilder().AddMinimalVddk().Remove(Distrib("lib64/libvixDiskLib.so.8")).Write(bad);

        var error = await Assert.ThrowsAsync<VddkException>(() => Extract(bad, target));

        Assert.Equal(ErrorCodes.VixDiskLibChainBroken, error.Code);
        Assert.True(File.Exists(Path.Combine(target, Distrib("doc/README"))));
        AssertNoLeftovers(temp.Path, Path.GetFileName(good), "bad.tar.gz", "out");
    }

    [Fact]
    public async Task Damaged_archive_leaves_no_temp()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(temp.Path, Small);
        ArchiveMutations.TruncateTo(archive, 0.7);
        var error = await Assert.ThrowsAsync<VddkException>(() => Extract(archive, temp.File("out")));
        Assert.Equal(ErrorCodes.ArchiveCorrupt, error.Code);
        AssertNoLeftovers(temp.Path, Path.GetFileName(archive));
    }

    [Fact]
    public async Task Cancellation_leaves_no_temp_and_keeps_the_existing_target()
    {
        using var temp = new TempFolder();
        var target = temp.File("out");
        var archive = SampleVddkArchive.WriteTo(temp.Path, Small);
        await Extract(archive, target);
        using var cts = new CancellationTokenSource();
        var log = new CancelOnFirstDetail(cts);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VddkExtraction.ExtractAsync(archive, target, VddkArchiveReadOptions.Default, log, cts.Token));

        Assert.True(File.Exists(Path.Combine(target, Distrib("doc/README"))));
        AssertNoLeftovers(temp.Path, Path.GetFileName(archive), "out");
    }

    [Fact]
    public async Task File_system_without_symlinks_is_VDDK1013_before_anything_is_written()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(temp.Path, Small);
        var target = temp.File("out");

        var error = await Assert.ThrowsAsync<VddkException>(() => VddkExtraction.ExtractAsync(
            archive, target, VddkArchiveReadOptions.Default, new CollectingLog(),
            (_, _) => throw new IOException("Operation not permitted"), CancellationToken.None));

        Assert.Equal(ErrorCodes.ExtractTargetNoSymlinks, error.Code);
        Assert.Contains("Forklift", error.Message);
        AssertNoLeftovers(temp.Path, Path.GetFileName(archive));
    }

    [Fact]
    public async Task Extraction_of_zip_keeps_symlinks()
    {
        using var temp = new TempFolder();
        var archive = SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = ArchiveCompression.Zip });
        var target = temp.File("out");
        await Extract(archive, target);
        Assert.Equal("libvixDiskLib.so.8", new FileInfo(Path.Combine(target, Distrib("lib64/libvixDiskLib.so"))).LinkTarget);
    }

    /// <summary>The reader logs a detail line once the format is known: a point after the temp folder exists.</summary>
    private sealed class CancelOnFirstDetail(CancellationTokenSource cts) : VddkBuild.Diagnostics.IBuildLog
    {
        public void Info(string message) { }
        public void Detail(string message) => cts.Cancel();
        public void Warn(string code, string message) { }
    }
}
