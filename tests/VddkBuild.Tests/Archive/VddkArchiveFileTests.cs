using System.Diagnostics;
using VddkBuild.Archive;
using VddkBuild.Layers;
using VddkBuild.TestSupport.Archives;

namespace VddkBuild.Tests.Archive;

/// <summary>
/// VddkArchive as users give it that is no archive file: a FIFO (a download piped in, /dev/stdin), a device
/// (/dev/zero, /dev/urandom), symlink loops and dangling links. Each is a coded error at once, through every way the
/// engine reads an archive (the layer with its hashing thread, the plain reader, the extraction), never a build that
/// blocks on the open or reads forever. Each call is bounded: a regression fails the test instead of hanging it.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class VddkArchiveFileTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>The three ways in, each expected to throw within <see cref="Bound"/>.</summary>
    private async Task<IReadOnlyList<VddkException>> FailuresOf(string archive)
    {
        var work = Path.Combine(_temp.Path, "work");
        var extracted = Path.Combine(_temp.Path, "extracted");
        Task[] ways =
        [
            Task.Run(() => VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, new LayerWriterOptions(), work, new CollectingLog(), CancellationToken.None)),
            Task.Run(() => Read.Archive(archive)),
            Task.Run(() => VddkExtraction.ExtractAsync(archive, extracted, VddkArchiveReadOptions.Default, new CollectingLog(), CancellationToken.None)),
        ];
        var failures = new List<VddkException>();
        foreach (var way in ways)
        {
            failures.Add(await Assert.ThrowsAsync<VddkException>(() => way.WaitAsync(Bound)));
        }
        Assert.False(Directory.Exists(extracted));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_temp.Path), e => Path.GetFileName(e).StartsWith(".extracted", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(work, "layers")) && Directory.EnumerateFileSystemEntries(Path.Combine(work, "layers")).Any());
        return failures;
    }

    [Fact]
    public async Task A_fifo_is_VDDK1018_at_once_without_opening_it()
    {
        var fifo = Path.Combine(_temp.Path, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        var failures = await FailuresOf(fifo);

        Assert.All(failures, f => Assert.Equal(ErrorCodes.ArchiveNotAFile, f.Code));
        Assert.Contains("FIFO", failures[0].Message);
        Assert.Contains("save the download first", failures[0].Message);
    }

    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    [InlineData("/dev/null")]
    public async Task A_character_device_is_VDDK1018(string device)
    {
        var failures = await FailuresOf(device);

        Assert.All(failures, f => Assert.Equal(ErrorCodes.ArchiveNotAFile, f.Code));
        Assert.Contains("character device", failures[0].Message);
    }

    [Fact]
    public async Task A_symlink_loop_is_VDDK1019_saying_so()
    {
        var a = Path.Combine(_temp.Path, "a.tar.gz");
        var b = Path.Combine(_temp.Path, "b.tar.gz");
        File.CreateSymbolicLink(a, b);
        File.CreateSymbolicLink(b, a);

        var failures = await FailuresOf(a);

        Assert.All(failures, f => Assert.Equal(ErrorCodes.ArchiveUnreadable, f.Code));
        Assert.Contains("loop", failures[0].Message);
    }

    [Fact]
    public async Task A_dangling_symlink_is_VDDK1001_naming_where_it_points()
    {
        var link = Path.Combine(_temp.Path, "vddk.tar.gz");
        var gone = Path.Combine(_temp.Path, "downloads", "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        File.CreateSymbolicLink(link, gone);

        var failures = await FailuresOf(link);

        Assert.All(failures, f => Assert.Equal(ErrorCodes.ArchiveNotFound, f.Code));
        Assert.Contains($"symbolic link to '{gone}'", failures[0].Message);
    }

    [Fact]
    public async Task A_path_through_a_file_is_VDDK1001()
    {
        var file = Path.Combine(_temp.Path, "file");
        await File.WriteAllTextAsync(file, "x");

        var failures = await FailuresOf(Path.Combine(file, "vddk.tar.gz"));

        Assert.All(failures, f => Assert.Equal(ErrorCodes.ArchiveNotFound, f.Code));
        Assert.Contains("a part of its path is a file", failures[0].Message);
    }

    [Fact]
    public async Task A_symlink_and_a_hard_link_to_the_archive_are_read_like_the_file()
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_temp.Path, "in"), SampleVddkArchiveOptions.Small);
        var symlink = Path.Combine(_temp.Path, "link to vddk.tar.gz");
        var hardlink = Path.Combine(_temp.Path, "hard link.tar.gz");
        File.CreateSymbolicLink(symlink, archive);
        using (var ln = Process.Start("ln", [archive, hardlink]))
        {
            await ln.WaitForExitAsync();
        }

        Assert.Equal((await Read.Archive(archive)).Version, (await Read.Archive(symlink).WaitAsync(Bound)).Version);
        Assert.Equal((await Read.Archive(archive)).Version, (await Read.Archive(hardlink).WaitAsync(Bound)).Version);
    }
}

/// <summary>VddkArchive as typed on a command line or in a .proj: ~/..., relative to the project or to where the build started.</summary>
public sealed class VddkArchivePathTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Folder(string name) => Directory.CreateDirectory(Path.Combine(_temp.Path, name)).FullName;

    [Fact]
    public void A_relative_path_is_taken_from_the_project_folder_when_the_file_is_there()
    {
        var (project, startup) = (Folder("project"), Folder("startup"));
        File.WriteAllText(Path.Combine(project, "vddk.tar.gz"), "p");
        File.WriteAllText(Path.Combine(startup, "vddk.tar.gz"), "s");
        var log = new CollectingLog();

        Assert.Equal(Path.Combine(project, "vddk.tar.gz"), VddkArchiveFile.Resolve("vddk.tar.gz", project, startup, "/home/u", log));
        Assert.Empty(log.Lines);
    }

    [Fact]
    public void A_relative_path_missing_in_the_project_folder_is_taken_from_the_startup_directory_saying_so()
    {
        var (project, startup) = (Folder("deploy"), _temp.Path);
        Directory.CreateDirectory(Path.Combine(startup, "downloads"));
        File.WriteAllText(Path.Combine(startup, "downloads", "vddk.tar.gz"), "s");
        var log = new CollectingLog();

        Assert.Equal(Path.Combine(startup, "downloads", "vddk.tar.gz"), VddkArchiveFile.Resolve("downloads/vddk.tar.gz", project, startup, null, log));
        Assert.Contains(log.Lines, i => i.Contains("relative to the directory the build was started from", StringComparison.Ordinal));
    }

    [Fact]
    public void A_relative_path_found_nowhere_stays_relative_to_the_project_and_its_error_says_where_it_looked()
    {
        var (project, startup) = (Folder("project"), Folder("startup"));

        var resolved = VddkArchiveFile.Resolve("vddk.tar.gz", project, startup, null, new CollectingLog());

        Assert.Equal(Path.Combine(project, "vddk.tar.gz"), resolved);
        var error = Assert.Throws<VddkException>(() => VddkArchiveFile.Check(resolved));
        Assert.Equal(ErrorCodes.ArchiveNotFound, error.Code);
        Assert.Contains("a relative path is taken from the project's folder, or else from the directory the build was started from", error.Message);
        Assert.Contains("%25", error.Message); // MSBuild's escapes, for a file name with % ; $ @
    }

    [Theory]
    [InlineData("~/Downloads/vddk.tar.gz", "/home/u/Downloads/vddk.tar.gz")]
    [InlineData("~", "/home/u")]
    [InlineData("/abs/vddk.tar.gz", "/abs/vddk.tar.gz")]
    [InlineData("/abs/./x/../vddk.tar.gz", "/abs/vddk.tar.gz")]
    public void A_home_relative_or_absolute_path_is_taken_as_the_shell_would(string value, string expected) =>
        Assert.Equal(expected, VddkArchiveFile.Resolve(value, Folder("project"), null, "/home/u", new CollectingLog()));

    [Fact]
    public void A_tilde_without_HOME_is_an_ordinary_relative_name()
    {
        var project = Folder("project");
        Assert.Equal(Path.Combine(project, "~", "vddk.tar.gz"), VddkArchiveFile.Resolve("~/vddk.tar.gz", project, null, null, new CollectingLog()));
    }
}

/// <summary>An archive read while it is still being written (a download in progress) is VDDK1020, not "corrupt, download it again".</summary>
public sealed class ArchiveChangedWhileReadTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Appends to the archive when the reading takes its first entry, as a download does meanwhile.</summary>
    private sealed class DownloadGoesOn(string path, bool grow) : IVddkEntrySink
    {
        public ValueTask WriteEntryAsync(VddkEntry entry, Stream? content, CancellationToken cancellationToken)
        {
            if (grow)
            {
                grow = false;
                using var file = new FileStream(path, FileMode.Append);
                file.Write(new byte[4096]);
            }
            return ValueTask.CompletedTask;
        }
    }

    private string HalfDownloaded(long unpackedBytes = 0)
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_temp.Path, "in"),
            unpackedBytes == 0 ? SampleVddkArchiveOptions.Small : SampleVddkArchiveOptions.Small with { TargetUnpackedBytes = unpackedBytes });
        ArchiveMutations.TruncateTo(archive, 0.5);
        return archive;
    }

    [Fact]
    public async Task A_truncated_archive_that_grows_while_it_is_read_is_VDDK1020_saying_a_download_may_be_in_progress()
    {
        var archive = HalfDownloaded();
        var length = new FileInfo(archive).Length;

        var error = await Assert.ThrowsAsync<VddkException>(() => VddkArchiveFile.ReadWhileUnchangedAsync(archive,
            () => Read.Archive(archive, new DownloadGoesOn(archive, grow: true))));

        Assert.Equal(ErrorCodes.ArchiveChanged, error.Code);
        Assert.Contains($"went from {length} to {length + 4096} bytes", error.Message);
        Assert.Contains("download or copy still in progress", error.Message);
        Assert.Equal(ErrorCodes.ArchiveCorrupt, Assert.IsType<VddkException>(error.InnerException).Code);
    }

    [Fact]
    public async Task A_truncated_archive_that_stays_as_it_is_is_still_VDDK1003()
    {
        var archive = HalfDownloaded();

        var error = await Assert.ThrowsAsync<VddkException>(() => VddkArchiveFile.ReadWhileUnchangedAsync(archive,
            () => Read.Archive(archive, new DownloadGoesOn(archive, grow: false))));

        Assert.Equal(ErrorCodes.ArchiveCorrupt, error.Code);
    }

    [Fact]
    public async Task Extracting_an_archive_that_grows_while_it_is_read_is_VDDK1020_and_leaves_nothing()
    {
        // Large enough that reading its first half takes tens of milliseconds, during which the "download" appends every millisecond.
        var archive = HalfDownloaded(unpackedBytes: 16_000_000);
        var target = Path.Combine(_temp.Path, "x");
        using var grower = new Timer(_ => { using var file = new FileStream(archive, FileMode.Append); file.Write(new byte[1]); }, null, 0, 1);

        var error = await Assert.ThrowsAsync<VddkException>(() => VddkExtraction.ExtractAsync(archive, target, VddkArchiveReadOptions.Default, new CollectingLog(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ArchiveChanged, error.Code);
        Assert.False(Directory.Exists(target));
    }
}
