using VddkBuild.Archive;
using VddkBuild.TestSupport.Archives;
using static VddkBuild.TestSupport.Archives.VddkArchiveBuilder;

namespace VddkBuild.Tests.Archive;

/// <summary>
/// VDDK archives of other versions and platforms, downloads named in other ways, and the VDDK 9 link for older MTV
/// releases (VddkAddSoname8Link).
/// </summary>
public sealed class VddkVariantTests
{
    private const string Vddk9Name = "VMware-vix-disklib-9.0.0.0.24742305.x86_64.tar.gz";
    private const string So8 = "vmware-vix-disklib-distrib/lib64/libvixDiskLib.so.8";
    private static readonly VddkArchiveReadOptions WithLink = new() { AddSoname8Link = true };

    private static async Task<(VddkArchiveContents Contents, CollectingLog Log, RecordingSink Sink)> Reads(VddkArchiveBuilder builder, string name, VddkArchiveReadOptions? options = null)
    {
        using var temp = new TempFolder();
        var path = temp.File(name);
        builder.Write(path);
        var log = new CollectingLog();
        var sink = new RecordingSink();
        return (await Read.Archive(path, sink, log, options), log, sink);
    }

    private static async Task<VddkException> Fails(VddkArchiveBuilder builder, string code, string name, VddkArchiveReadOptions? options = null)
    {
        using var temp = new TempFolder();
        var path = temp.File(name);
        builder.Write(path);
        var error = await Read.Failure(path, options: options);
        Assert.True(error.Code == code, $"expected {code}, got {error.Code}: {error.Message}");
        return error;
    }

    /// <summary>A VDDK 6.7 / 7.0 tree as those releases ship it: no lib32, libraries of their own soname chains.</summary>
    [Theory]
    [InlineData("6.7.3", "VMware-vix-disklib-6.7.3-14389676.x86_64.tar.gz")]
    [InlineData("7.0.3", "VMware-vix-disklib-7.0.3-19513565.x86_64.tar.gz")]
    public async Task Older_vddk_layouts_are_accepted_with_their_version(string version, string name)
    {
        var major = version.Split('.')[0];
        var builder = new VddkArchiveBuilder()
            .AddDirectory(Top).AddDirectory(Distrib("bin64")).AddDirectory(Distrib("doc")).AddDirectory(Distrib("include")).AddDirectory(Distrib("lib64"))
            .AddFile(Distrib("include/vixDiskLib.h"), "/* fixture */")
            .AddFile(Distrib($"lib64/libvixDiskLib.so.{version}"), FixtureContent.ElfLibrary(62, 8192, 1))
            .AddSymlink(Distrib($"lib64/libvixDiskLib.so.{major}"), $"libvixDiskLib.so.{version}")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), $"libvixDiskLib.so.{major}")
            .AddFile(Distrib("lib64/libcrypto.so.1.0.2"), FixtureContent.ElfLibrary(62, 8192, 2))
            .AddSymlink(Distrib("lib64/libcrypto.so"), "libcrypto.so.1.0.2")
            .AddFile(Distrib("lib64/libvixMntapi.so.1.1.0"), FixtureContent.ElfLibrary(62, 8192, 3))
            .AddSymlink(Distrib("lib64/libvixMntapi.so.1"), "libvixMntapi.so.1.1.0");

        var (contents, log, _) = await Reads(builder, name);

        Assert.Equal(version, contents.Version);
        Assert.Empty(log.Warnings);
    }

    [Theory]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz.1")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar - Copy.gz")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64(1).tar.gz")]
    public async Task A_copied_or_downloaded_again_archive_keeps_its_build_number(string name)
    {
        var (contents, log, _) = await Reads(new VddkArchiveBuilder().AddMinimalVddk("8.0.1"), name);

        Assert.Equal(("8.0.1", "21562716"), (contents.Version, contents.BuildNumber));
        Assert.Empty(log.Warnings);
    }

    [Fact]
    public async Task A_copied_archive_whose_name_disagrees_with_its_library_is_VDDK1011()
    {
        var error = await Fails(new VddkArchiveBuilder().AddMinimalVddk("8.0.3"), ErrorCodes.VersionMismatch, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz.1");
        Assert.Contains("8.0.1", error.Message);
        Assert.Contains("libvixDiskLib.so.8.0.3", error.Message);
    }

    [Fact]
    public async Task The_windows_vddk_zip_is_VDDK1016_naming_the_linux_download()
    {
        var builder = new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }
            .AddDirectory(Top).AddDirectory(Distrib("bin")).AddDirectory(Distrib("lib")).AddDirectory(Distrib("include"))
            .AddFile(Distrib("bin/vixDiskLib.dll"), FixtureContent.Bytes(8192, 1, "dll"))
            .AddFile(Distrib("bin/vddkVimAccess.dll"), FixtureContent.Bytes(8192, 2, "dll"))
            .AddFile(Distrib("lib/vixDiskLib.lib"), FixtureContent.Bytes(4096, 3, "lib"))
            .AddFile(Distrib("include/vixDiskLib.h"), "/* fixture */");

        var error = await Fails(builder, ErrorCodes.WindowsVddk, "VMware-vix-disklib-8.0.1-21562716.x86_64.zip");

        Assert.Contains("VDDK for Windows", error.Message);
        Assert.Contains("bin/vixDiskLib.dll", error.Message);
        Assert.Contains(".x86_64.tar.gz", error.Message);
    }

    [Fact]
    public async Task A_windows_vddk_zip_without_the_top_folder_is_VDDK1016()
    {
        var builder = new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }
            .AddFile("bin/vixDiskLib.dll", FixtureContent.Bytes(8192, 1, "dll"))
            .AddFile("lib/vixDiskLib.lib", FixtureContent.Bytes(4096, 3, "lib"));

        var error = await Fails(builder, ErrorCodes.WindowsVddk, "VMware-vix-disklib-8.0.3-23950268.x86_64.zip");

        Assert.Contains("VDDK for Windows", error.Message);
    }

    [Fact]
    public async Task Another_windows_program_is_VDDK1004_not_called_a_windows_vddk()
    {
        var builder = new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }
            .AddFile("bin/putty.dll", FixtureContent.Bytes(8192, 1, "dll"))
            .AddFile("bin/putty.exe", FixtureContent.Bytes(8192, 2, "exe"));

        var error = await Fails(builder, ErrorCodes.NotAVddk, "putty.zip");

        Assert.DoesNotContain("Windows", error.Message);
    }

    [Fact]
    public async Task A_vddk9_with_a_major_version_beyond_int_gets_the_link()
    {
        var (_, _, sink) = await Reads(new VddkArchiveBuilder().AddMinimalVddk("99999999999.0.0.0"), "vddk.tar.gz", WithLink);
        Assert.Equal("libvixDiskLib.so.99999999999.0.0.0", Assert.Single(sink.Entries, e => e.Path == So8).LinkTarget);
    }

    [Fact]
    public async Task A_zip_holding_the_downloaded_tar_gz_is_VDDK1004_saying_to_unpack_it()
    {
        var builder = new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }
            .AddFile("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", new VddkArchiveBuilder().AddMinimalVddk().ToBytes());

        var error = await Fails(builder, ErrorCodes.NotAVddk, "VDDK801.zip");

        Assert.Contains("holds another archive, 'VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz'", error.Message);
        Assert.Contains("Unpack 'VDDK801.zip'", error.Message);
    }

    [Theory]
    [InlineData((ushort)183, 2, "aarch64")]
    [InlineData((ushort)3, 1, "i386")]
    public async Task A_library_built_for_another_architecture_is_VDDK1017(ushort machine, byte elfClass, string named)
    {
        var builder = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0")
            .Remove(Distrib("lib64/libvixDiskLib.so.9.0.0.0"))
            .AddFile(Distrib("lib64/libvixDiskLib.so.9.0.0.0"), FixtureContent.ElfLibrary(machine, 8192, 1, elfClass), 0x1ED);

        // Named as if for x86_64: the library's header decides.
        var error = await Fails(builder, ErrorCodes.VddkArchitectureNotX86_64, Vddk9Name);

        Assert.Contains(named, error.Message);
        Assert.Contains("VMware-vix-disklib-9.0.0.0-<build>.x86_64.tar.gz", error.Message);
    }

    [Fact]
    public async Task A_library_for_another_architecture_reached_through_a_symlinked_folder_is_VDDK1017()
    {
        // lib64/libvixDiskLib.so.9 -> current/libvixDiskLib.so.9.0.0.0, where lib64/current -> ../versions/9: the
        // library is not in lib64 itself.
        var builder = new VddkArchiveBuilder().AddDirectory(Top).AddDirectory(Distrib("lib64"))
            .AddDirectory(Distrib("versions")).AddDirectory(Distrib("versions/9"))
            .AddFile(Distrib("versions/9/libvixDiskLib.so.9.0.0.0"), FixtureContent.ElfLibrary(183, 8192, 1), 0x1ED)
            .AddSymlink(Distrib("lib64/current"), "../versions/9")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.9"), "current/libvixDiskLib.so.9.0.0.0")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), "libvixDiskLib.so.9");

        Assert.Contains("aarch64", (await Fails(builder, ErrorCodes.VddkArchitectureNotX86_64, Vddk9Name)).Message);
    }

    [Fact]
    public async Task A_library_for_another_architecture_that_is_a_hard_link_to_an_earlier_file_is_VDDK1017()
    {
        // A tree whose library shares its inode with a file tar met first: the library is stored as a hard link to it.
        var builder = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0")
            .Remove(Distrib("lib64/libvixDiskLib.so.9.0.0.0"))
            .AddDirectory(Distrib("bin64"))
            .AddFile(Distrib("bin64/vixDiskLib-copy"), FixtureContent.ElfLibrary(183, 8192, 1), 0x1ED)
            .AddHardlink(Distrib("lib64/libvixDiskLib.so.9.0.0.0"), Distrib("bin64/vixDiskLib-copy"));

        Assert.Contains("aarch64", (await Fails(builder, ErrorCodes.VddkArchitectureNotX86_64, Vddk9Name)).Message);
    }

    [Fact]
    public async Task An_archive_named_for_aarch64_is_VDDK1017_when_its_library_is_not_x86_64_elf()
    {
        var error = await Fails(new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0"), ErrorCodes.VddkArchitectureNotX86_64, "VMware-vix-disklib-9.0.0.0.24742305.aarch64.tar.gz");
        Assert.Contains("aarch64", error.Message);
    }

    [Fact]
    public async Task An_x86_64_library_is_accepted_whatever_the_name_says()
    {
        var builder = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0")
            .Remove(Distrib("lib64/libvixDiskLib.so.9.0.0.0"))
            .AddFile(Distrib("lib64/libvixDiskLib.so.9.0.0.0"), FixtureContent.ElfLibrary(62, 8192, 1), 0x1ED);

        var (contents, _, _) = await Reads(builder, "VMware-vix-disklib-9.0.0.0.24742305.aarch64.tar.gz");

        Assert.Equal("9.0.0.0", contents.Version);
    }

    [Fact]
    public async Task Soname8_link_is_added_to_a_vddk9_tree_as_a_relative_link_to_the_library()
    {
        var (contents, log, sink) = await Reads(new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0"), Vddk9Name, WithLink);

        var link = Assert.Single(sink.Entries, e => e.Path == So8);
        Assert.Equal(VddkEntryKind.Symlink, link.Kind);
        Assert.Equal("libvixDiskLib.so.9.0.0.0", link.LinkTarget);
        Assert.Equal(DefaultTime, link.ModificationTime);
        Assert.Same(link, contents.Entries[^1]);
        Assert.Empty(log.Warnings);
        Assert.Contains(log.Lines, l => l.Contains("added the relative link lib64/libvixDiskLib.so.8 -> libvixDiskLib.so.9.0.0.0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Soname8_link_is_not_added_without_the_option()
    {
        var (contents, _, sink) = await Reads(new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0"), Vddk9Name);
        Assert.DoesNotContain(sink.Entries, e => e.Path == So8);
        Assert.DoesNotContain(contents.Entries, e => e.Path == So8);
    }

    [Fact]
    public async Task Soname8_link_leads_to_the_library_through_a_symlinked_folder()
    {
        // libvixDiskLib.so.9 -> ../lib64-real/libvixDiskLib.so.9.0.0.0: the added link must reach the same file.
        var builder = new VddkArchiveBuilder()
            .AddDirectory(Top).AddDirectory(Distrib("lib64")).AddDirectory(Distrib("lib64-real"))
            .AddFile(Distrib("lib64-real/libvixDiskLib.so.9.0.0.0"), FixtureContent.Bytes(8192, 1, "lib"), 0x1ED)
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.9"), "../lib64-real/libvixDiskLib.so.9.0.0.0")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), "libvixDiskLib.so.9");

        var (_, _, sink) = await Reads(builder, Vddk9Name, WithLink);

        Assert.Equal("../lib64-real/libvixDiskLib.so.9.0.0.0", Assert.Single(sink.Entries, e => e.Path == So8).LinkTarget);
    }

    [Fact]
    public async Task Soname8_link_already_in_the_archive_is_kept_and_nothing_is_added()
    {
        var builder = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0").AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so.9");

        var (_, log, sink) = await Reads(builder, Vddk9Name, WithLink);

        Assert.Equal("libvixDiskLib.so.9", Assert.Single(sink.Entries, e => e.Path == So8).LinkTarget);
        Assert.Empty(log.Warnings);
    }

    [Fact]
    public async Task A_broken_soname8_link_in_the_archive_is_VDDK1006_when_the_option_asks_for_it()
    {
        var builder = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0").AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "libvixDiskLib.so.9.0.0");

        var error = await Fails(builder, ErrorCodes.VixDiskLibChainBroken, Vddk9Name, WithLink);

        Assert.Contains("libvixDiskLib.so.8", error.Message);
        Assert.Contains("VddkAddSoname8Link", error.Message);
    }

    [Theory]
    [InlineData("8.0.1", "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", "own lib64/libvixDiskLib.so.8")]
    [InlineData("7.0.3", "VMware-vix-disklib-7.0.3-19513565.x86_64.tar.gz", "libvixDiskLib.so.7")]
    public async Task Soname8_link_on_an_older_vddk_adds_nothing_and_warns_VDDK1904(string version, string name, string says)
    {
        var (contents, log, sink) = await Reads(new VddkArchiveBuilder().AddMinimalVddk(version), name, WithLink);

        var warning = Assert.Single(log.Warnings);
        Assert.Equal(ErrorCodes.Soname8LinkNotAdded, warning.Code);
        Assert.Contains(says, warning.Message);
        Assert.Contains("VddkAddSoname8Link", warning.Message);
        Assert.Equal(contents.Entries.Count, sink.Entries.Count);
        Assert.Equal(version == "8.0.1" ? 1 : 0, sink.Entries.Count(e => e.Path == So8));
    }

    [Fact]
    public async Task ExtractVddk_tree_gets_the_soname8_link_that_resolves_to_the_library()
    {
        using var temp = new TempFolder();
        var archive = temp.File(Vddk9Name);
        new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0").Write(archive);
        var target = temp.File("extracted");

        await VddkExtraction.ExtractAsync(archive, target, WithLink, new CollectingLog(), CancellationToken.None);

        var link = new FileInfo(Path.Combine(target, So8));
        Assert.Equal("libvixDiskLib.so.9.0.0.0", link.LinkTarget);
        var resolved = link.ResolveLinkTarget(returnFinalTarget: true);
        Assert.NotNull(resolved);
        Assert.Equal(8192, new FileInfo(resolved.FullName).Length);
    }
}
