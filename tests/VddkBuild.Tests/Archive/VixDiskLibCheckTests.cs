using VddkBuild.Archive;
using VddkBuild.TestSupport.Archives;
using static VddkBuild.TestSupport.Archives.VddkArchiveBuilder;

namespace VddkBuild.Tests.Archive;

/// <summary>The tree-wide checks: the libvixDiskLib chains Forklift and nbdkit use, and the version.</summary>
public sealed class VixDiskLibCheckTests
{
    private const string Vddk8Name = "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz";

    private static async Task<(VddkArchiveContents Contents, CollectingLog Log)> Reads(VddkArchiveBuilder builder, string name = Vddk8Name)
    {
        using var temp = new TempFolder();
        var path = temp.File(name);
        builder.Write(path);
        var log = new CollectingLog();
        return (await Read.Archive(path, log: log), log);
    }

    private static async Task<VddkException> Fails(VddkArchiveBuilder builder, string code, string name = Vddk8Name)
    {
        using var temp = new TempFolder();
        var path = temp.File(name);
        builder.Write(path);
        var error = await Read.Failure(path);
        Assert.True(error.Code == code, $"expected {code}, got {error.Code}: {error.Message}");
        return error;
    }

    private static VddkArchiveBuilder Lib64() => new VddkArchiveBuilder().AddDirectory(Top).AddDirectory(Distrib("lib64"));

    private static byte[] Library => FixtureContent.Bytes(1024, 7, "lib");

    [Fact]
    public async Task Missing_libvixDiskLib_so_is_VDDK1005() =>
        await Fails(new VddkArchiveBuilder().AddMinimalVddk().Remove(Distrib("lib64/libvixDiskLib.so")), ErrorCodes.VixDiskLibMissing);

    [Fact]
    public async Task Broken_chain_is_VDDK1006_showing_the_chain()
    {
        var error = await Fails(new VddkArchiveBuilder().AddMinimalVddk().Remove(Distrib("lib64/libvixDiskLib.so.8")), ErrorCodes.VixDiskLibChainBroken);
        Assert.Contains("libvixDiskLib.so -> libvixDiskLib.so.8 -> (missing)", error.Message);
    }

    [Fact]
    public async Task Symlink_loop_is_VDDK1006()
    {
        var builder = Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), Library)
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), "libvixDiskLib.so.8")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so");
        var error = await Fails(builder, ErrorCodes.VixDiskLibChainBroken);
        Assert.Contains("(loop)", error.Message);
    }

    [Fact]
    public async Task Chain_ending_at_a_directory_is_VDDK1006() =>
        Assert.Contains("directory", (await Fails(Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), Library).AddSymlink(Distrib("lib64/libvixDiskLib.so"), "."), ErrorCodes.VixDiskLibChainBroken)).Message);

    [Fact]
    public async Task Chain_through_a_symlinked_directory_resolves()
    {
        // lib64/libvixDiskLib.so -> current/libvixDiskLib.so.8.0.1, where lib64/current -> ../versions/8
        var builder = Lib64()
            .AddDirectory(Distrib("versions")).AddDirectory(Distrib("versions/8"))
            .AddFile(Distrib("versions/8/libvixDiskLib.so.8.0.1"), Library)
            .AddSymlink(Distrib("lib64/current"), "../versions/8")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "current/libvixDiskLib.so.8.0.1")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), "libvixDiskLib.so.8");
        var (contents, _) = await Reads(builder);
        Assert.Equal("8.0.1", contents.Version);
    }

    [Theory]
    [InlineData("libvixDiskLib.so.8/")]                                 // a trailing slash asks for a directory
    [InlineData("libvixDiskLib.so.8.0.1/.")]
    [InlineData("libvixDiskLib.so.8.0.1/../libvixDiskLib.so.8.0.1")]  // '..' after a file: the kernel does not go back
    public async Task Chain_that_treats_a_file_as_a_directory_is_VDDK1006(string target)
    {
        // The kernel fails such a path with ENOTDIR: 'file -E' says "broken symbolic link ... (Not a directory)".
        var builder = Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), Library)
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so.8.0.1")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), target);
        var error = await Fails(builder, ErrorCodes.VixDiskLibChainBroken);
        Assert.Contains("not a directory", error.Message);
    }

    [Theory]
    [InlineData("./libvixDiskLib.so.8")]
    [InlineData("../lib64//libvixDiskLib.so.8")]
    [InlineData("current/./libvixDiskLib.so.8.0.1")] // through a link to a directory written with a trailing slash
    public async Task Chain_with_dot_and_doubled_slashes_between_directories_resolves(string target)
    {
        var builder = Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), Library)
            .AddSymlink(Distrib("lib64/current"), "../lib64/")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so.8.0.1")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), target);
        var (contents, _) = await Reads(builder);
        Assert.Equal("8.0.1", contents.Version);
    }

    [Fact]
    public async Task Chain_through_a_directory_symlink_loop_is_VDDK1006()
    {
        var builder = Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), Library)
            .AddSymlink(Distrib("lib64/a"), "b").AddSymlink(Distrib("lib64/b"), "a")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so.8.0.1")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), "a/libvixDiskLib.so.8");
        Assert.Contains("(loop)", (await Fails(builder, ErrorCodes.VixDiskLibChainBroken)).Message);
    }

    [Fact]
    public async Task Regular_libvixDiskLib_so_without_versioned_file_is_VDDK1005() =>
        await Fails(Lib64().AddFile(Distrib("lib64/libvixDiskLib.so"), Library), ErrorCodes.VixDiskLibMissing);

    [Fact]
    public async Task Missing_major_soname_that_nbdkit_loads_is_VDDK1006()
    {
        var builder = Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), Library).AddSymlink(Distrib("lib64/libvixDiskLib.so"), "libvixDiskLib.so.8.0.1");
        var error = await Fails(builder, ErrorCodes.VixDiskLibChainBroken);
        Assert.Contains("libvixDiskLib.so.8", error.Message);
        Assert.Contains("nbdkit", error.Message);
    }

    [Fact]
    public async Task Vddk9_with_relative_field_fix_link_is_accepted()
    {
        var builder = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0").AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so.9.0.0.0");
        var (contents, _) = await Reads(builder, "VMware-vix-disklib-9.0.0.0.24742305.x86_64.tar.gz");
        Assert.Equal(("9.0.0.0", "24742305"), (contents.Version, contents.BuildNumber));
    }

    [Fact]
    public async Task Name_version_prefix_compatible_with_content_is_accepted()
    {
        var (contents, _) = await Reads(new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0"), "VMware-vix-disklib-9.0.0-24742305.x86_64.tar.gz");
        Assert.Equal("9.0.0.0", contents.Version);
    }

    [Fact]
    public async Task Name_version_differing_from_content_is_VDDK1011()
    {
        var error = await Fails(new VddkArchiveBuilder().AddMinimalVddk("8.0.1"), ErrorCodes.VersionMismatch, "VMware-vix-disklib-8.0.3-24022515.x86_64.tar.gz");
        Assert.Contains("8.0.3", error.Message);
        Assert.Contains("libvixDiskLib.so.8.0.1", error.Message);
    }

    [Fact]
    public async Task Renamed_archive_takes_version_from_content_and_warns_VDDK1902()
    {
        var (contents, log) = await Reads(new VddkArchiveBuilder().AddMinimalVddk("8.0.2"), "vddk.tar.gz");
        Assert.Equal("8.0.2", contents.Version);
        Assert.Null(contents.BuildNumber);
        Assert.Equal([ErrorCodes.BuildNumberUnknown], log.Warnings.Select(w => w.Code));
    }

    [Fact]
    public async Task Name_without_build_number_warns_VDDK1902()
    {
        var (contents, log) = await Reads(new VddkArchiveBuilder().AddMinimalVddk(), "VMware-vix-disklib-8.0.1.x86_64.tar.gz");
        Assert.Null(contents.BuildNumber);
        Assert.Single(log.Warnings, w => w.Code == ErrorCodes.BuildNumberUnknown);
    }

    [Fact]
    public async Task Several_versioned_files_are_decided_by_the_chain()
    {
        var builder = new VddkArchiveBuilder().AddMinimalVddk("8.0.1").AddFile(Distrib("lib64/libvixDiskLib.so.7.0.3"), Library);
        Assert.Equal("8.0.1", (await Reads(builder)).Contents.Version);
    }

    [Fact]
    public async Task Macos_archive_is_accepted_with_one_warning_and_no_metadata_entries()
    {
        using var temp = new TempFolder();
        var builder = SampleVddkArchive.CreateBuilder(SampleVddkArchiveOptions.Small with { Format = System.Formats.Tar.TarEntryFormat.Pax, DocumentationPages = 2 });
        builder.MacMetadata = true;
        var path = temp.File(Vddk8Name);
        builder.Write(path);
        var log = new CollectingLog();
        var sink = new RecordingSink();
        var contents = await Read.Archive(path, sink, log);

        var warning = Assert.Single(log.Warnings);
        Assert.Equal(ErrorCodes.MacMetadataDropped, warning.Code);
        var files = builder.Paths.Count;
        Assert.Contains($"dropped {files} AppleDouble", warning.Message);
        Assert.Contains($"{2 * files} extended-attribute records", warning.Message);
        Assert.Equal(3 * files, contents.DroppedMacMetadataCount);
        Assert.DoesNotContain(sink.Entries, e => Path.GetFileName(e.Path).StartsWith("._", StringComparison.Ordinal));
        Assert.Equal("8.0.1", contents.Version);
    }

    [Fact]
    public async Task Linux_extended_attribute_records_alone_warn_without_saying_macOS()
    {
        // GNU tar --xattrs --selinux on Fedora or RHEL: SCHILY.xattr records on every file, no AppleDouble files.
        var builder = new VddkArchiveBuilder().AddMinimalVddk()
            .AddRaw(() => new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, Distrib("doc/README.txt"),
                new Dictionary<string, string> { ["SCHILY.xattr.security.selinux"] = "system_u:object_r:usr_t:s0" })
            {
                DataStream = new MemoryStream("x"u8.ToArray()),
            });

        var (contents, log) = await Reads(builder);

        var warning = Assert.Single(log.Warnings);
        Assert.Equal(ErrorCodes.MacMetadataDropped, warning.Code);
        Assert.Contains("1 extended-attribute record", warning.Message);
        Assert.DoesNotContain("macOS", warning.Message);
        Assert.Equal(1, contents.DroppedMacMetadataCount);
    }

    [Fact]
    public async Task Finder_zip_with_macosx_folder_is_accepted_with_one_warning()
    {
        using var temp = new TempFolder();
        var builder = new VddkArchiveBuilder { Compression = ArchiveCompression.Zip, MacMetadata = true }.AddMinimalVddk();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.zip");
        builder.Write(path);
        var log = new CollectingLog();
        var contents = await Read.Archive(path, log: log);
        Assert.Equal(ErrorCodes.MacMetadataDropped, Assert.Single(log.Warnings).Code);
        Assert.Equal(3, contents.DroppedMacMetadataCount);
        Assert.All(contents.Entries, e => Assert.StartsWith(Top, e.Path));
    }

    [Fact]
    public async Task Symlinks_turned_into_text_files_are_VDDK1006()
    {
        // What a Windows zip tool leaves of lib64: the links are files holding their target's name.
        var builder = Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), FixtureContent.Bytes(50_000, 2, "lib"))
            .AddFile(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so.8.0.1")
            .AddFile(Distrib("lib64/libvixDiskLib.so"), "libvixDiskLib.so.8");
        var error = await Fails(builder, ErrorCodes.VixDiskLibChainBroken);
        Assert.Contains("symlinks into small text files", error.Message);
    }

    [Fact]
    public async Task Dereferenced_copies_of_the_library_are_accepted()
    {
        // tar -h (follow links) stores full copies instead of links; nbdkit can load those.
        var library = FixtureContent.Bytes(50_000, 2, "lib");
        var builder = Lib64().AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1"), library)
            .AddFile(Distrib("lib64/libvixDiskLib.so.8"), library)
            .AddFile(Distrib("lib64/libvixDiskLib.so"), library);
        Assert.Equal("8.0.1", (await Reads(builder)).Contents.Version);
    }
}
