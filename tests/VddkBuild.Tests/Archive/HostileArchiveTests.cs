using System.Formats.Tar;
using VddkBuild.Archive;
using VddkBuild.Tests.Layers;
using VddkBuild.TestSupport.Archives;
using static VddkBuild.TestSupport.Archives.VddkArchiveBuilder;

namespace VddkBuild.Tests.Archive;

/// <summary>One test per bad input: each must fail with its own stable code.</summary>
public sealed class HostileArchiveTests
{
    private const string ArchiveName = "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz";

    private static async Task<VddkException> Fails(VddkArchiveBuilder builder, string code, VddkArchiveReadOptions? options = null)
    {
        using var temp = new TempFolder();
        var path = temp.File(ArchiveName);
        builder.Write(path);
        var error = await Read.Failure(path, options: options);
        Assert.Equal(code, error.Code);
        return error;
    }

    private static VddkArchiveBuilder Vddk(ArchiveCompression compression = ArchiveCompression.Gzip) =>
        new VddkArchiveBuilder { Compression = compression }.AddMinimalVddk();

    [Fact]
    public async Task Dot_dot_component_is_VDDK1007()
    {
        var error = await Fails(Vddk().AddFile(Distrib("lib64/../../evil"), "x"), ErrorCodes.EntryEscapesTree);
        Assert.Contains("'..'", error.Message);
        Assert.Contains("lib64/../../evil", error.Message);
    }

    [Fact]
    public async Task Absolute_path_is_VDDK1007() =>
        Assert.Contains("absolute", (await Fails(Vddk().AddFile("/etc/cron.d/evil", "x"), ErrorCodes.EntryEscapesTree)).Message);

    [Fact]
    public async Task Control_character_in_name_is_VDDK1007()
    {
        var error = await Fails(Vddk().AddFile(Distrib("doc/evil\u001b[2Jname"), "x"), ErrorCodes.EntryEscapesTree);
        Assert.Contains("\\u001B", error.Message);
        Assert.DoesNotContain('\u001b', error.Message);
    }

    [Theory]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Gnu)]
    public async Task Name_component_over_255_bytes_is_VDDK1007(TarEntryFormat format)
    {
        // GNU tar: "Cannot open: File name too long"; a container runtime cannot unpack such a layer either.
        var builder = Vddk();
        builder.Format = format;
        var error = await Fails(builder.AddFile(Distrib("doc/" + new string('n', 256)), "x"), ErrorCodes.EntryEscapesTree);
        Assert.Contains("256 bytes", error.Message);
        Assert.Contains("255", error.Message);
    }

    [Fact]
    public async Task Name_components_are_measured_in_bytes_up_to_255()
    {
        using var temp = new TempFolder();
        var path = temp.File(ArchiveName);
        Vddk().AddFile(Distrib("doc/" + new string('n', 255)), "x").Write(path);
        await Read.Archive(path);
        await Fails(Vddk().AddFile(Distrib("doc/" + new string('\u00e9', 128)), "x"), ErrorCodes.EntryEscapesTree); // 128 characters, 256 bytes
    }

    [Fact]
    public async Task Path_longer_than_a_runtime_can_unpack_is_VDDK1007()
    {
        // Twenty folders of 200 bytes: every component is fine, the whole path (over 4 KiB) is not.
        var builder = Vddk();
        var folder = Distrib("doc");
        for (var i = 0; i < 20; i++)
        {
            folder += "/" + new string('d', 200);
            builder.AddDirectory(folder);
        }
        var error = await Fails(builder.AddFile(folder + "/f", "x"), ErrorCodes.EntryEscapesTree);
        Assert.Contains("bytes long", error.Message);
    }

    [Fact]
    public async Task Symlink_target_over_4095_bytes_is_VDDK1008() =>
        Assert.Contains("4095", (await Fails(Vddk().AddSymlink(Distrib("doc/long"), string.Concat(Enumerable.Repeat("./", 2100)) + "README"), ErrorCodes.SymlinkEscapesTree)).Message);

    [Theory]
    [InlineData("path", "vmware-vix-disklib-distrib/doc/one-name")]
    [InlineData("linkpath", "README.txt")]
    [InlineData("size", "0")]
    public async Task Pax_global_header_that_renames_or_resizes_the_entries_after_it_is_VDDK1010(string key, string value)
    {
        // GNU tar and Python's tarfile apply these to every later entry (every file gets the one name; with 'size' they
        // read the data as headers); bsdtar and Go's reader (container runtimes) ignore them: two different trees.
        var builder = Vddk().AddPaxGlobalHeader(new Dictionary<string, string> { [key] = value })
            .AddFile(Distrib("doc/a.txt"), new string('a', 600)).AddSymlink(Distrib("doc/b"), "a.txt");
        var error = await Fails(builder, ErrorCodes.SpecialFileEntry);
        Assert.Contains($"'{key}'", error.Message);
        Assert.Contains("global", error.Message);
    }

    [Theory]
    [InlineData('0')]
    [InlineData('\0')] // the pre-POSIX regular file, which Go's reader turns into a directory by the slash
    public async Task Regular_file_with_data_whose_name_ends_in_a_slash_is_VDDK1010(char type)
    {
        // GNU tar unpacks it as a directory and skips the data, bsdtar fails on it, Go and Python read a file.
        using var temp = new TempFolder();
        var path = temp.File(ArchiveName);
        CraftedTar.WriteSampleWith(path, CraftedTar.File(Distrib("doc/d0/"), "abc", patch: header => header[156] = (byte)type));
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.SpecialFileEntry, error.Message);
        Assert.Contains("doc/d0/", error.Message);
    }

    [Theory]
    [InlineData('\u202E')] // RIGHT-TO-LEFT OVERRIDE: a viewer that applies it shows the rest of the name reversed
    [InlineData('\u2028')] // LINE SEPARATOR: a line break to some log viewers
    [InlineData('\u200B')] // ZERO WIDTH SPACE: two different names that look alike
    public async Task Invisible_or_reordering_characters_in_a_name_are_shown_escaped_in_messages(char hidden)
    {
        // Such names are legal (they are kept in the image); only the message must not let them disguise the path.
        var name = Distrib($"doc/a{hidden}b.txt");
        var error = await Fails(Vddk().AddFile(name, "x").AddFile(name, "y"), ErrorCodes.DuplicateEntry);
        Assert.Contains($"\\u{(int)hidden:X4}", error.Message);
        Assert.DoesNotContain(hidden, error.Message);
    }

    [Fact]
    public async Task Entry_below_a_symlinked_directory_is_VDDK1007() =>
        await Fails(Vddk().AddSymlink(Distrib("doc"), "lib64").AddFile(Distrib("doc/through-the-link"), "x"), ErrorCodes.EntryEscapesTree);

    [Fact]
    public async Task Entry_outside_the_top_folder_is_VDDK1004() =>
        Assert.Contains("vmware-vix-disklib-distrib/", (await Fails(Vddk().AddFile("README.txt", "x"), ErrorCodes.NotAVddk)).Message);

    [Fact]
    public async Task Archive_of_another_product_is_VDDK1004() =>
        await Fails(new VddkArchiveBuilder().AddDirectory("node-v20").AddFile("node-v20/bin/node", "x"), ErrorCodes.NotAVddk);

    [Fact]
    public async Task Empty_tar_is_VDDK1004()
    {
        using var temp = new TempFolder();
        var path = temp.File(ArchiveName);
        await File.WriteAllBytesAsync(path, new byte[10240]); // only end-of-archive blocks, as `tar cf x.tar -T /dev/null` writes
        Assert.Equal(ErrorCodes.NotAVddk, (await Read.Failure(path)).Code);
    }

    [Fact]
    public async Task Archive_with_only_macos_metadata_is_VDDK1004()
    {
        using var temp = new TempFolder();
        var path = temp.File(ArchiveName);
        new VddkArchiveBuilder().AddFile("._vmware-vix-disklib-distrib", "apple").AddDirectory("__MACOSX").Write(path);
        Assert.Equal(ErrorCodes.NotAVddk, (await Read.Failure(path)).Code);
    }

    [Fact]
    public async Task Top_folder_that_is_a_symlink_is_VDDK1004() =>
        await Fails(new VddkArchiveBuilder().AddSymlink(Top, "/opt/other"), ErrorCodes.NotAVddk);

    [Fact]
    public async Task Absolute_symlink_is_VDDK1008() =>
        await Fails(Vddk().AddSymlink(Distrib("lib64/libz.so"), "/usr/lib64/libz.so.1"), ErrorCodes.SymlinkEscapesTree);

    [Fact]
    public async Task Absolute_vddk9_field_fix_link_is_VDDK1008_explaining_a_relative_link()
    {
        var builder = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so.8"), "/vmware-vix-disklib-distrib/lib64/libvixDiskLib.so.9.0.0.0");
        var error = await Fails(builder, ErrorCodes.SymlinkEscapesTree);
        Assert.Contains("RELATIVE", error.Message);
        Assert.Contains("libvixDiskLib.so.8", error.Message);
    }

    [Fact]
    public async Task Relative_symlink_leading_out_of_the_tree_is_VDDK1008() =>
        await Fails(Vddk().AddSymlink(Distrib("lib64/passwd"), "../../../etc/passwd"), ErrorCodes.SymlinkEscapesTree);

    [Fact]
    public async Task Symlink_leading_out_through_a_symlinked_directory_is_VDDK1008()
    {
        // Lexically "up/../x" stays inside; physically "up" is the top folder, so ".." leaves it.
        var builder = Vddk().AddSymlink(Distrib("lib64/up"), "..").AddSymlink(Distrib("lib64/sneaky"), "up/../outside");
        var error = await Fails(builder, ErrorCodes.SymlinkEscapesTree);
        Assert.Contains("sneaky", error.Message);
    }

    [Fact]
    public async Task Hardlink_to_a_missing_entry_is_VDDK1009() =>
        await Fails(Vddk().AddHardlink(Distrib("lib64/copy"), Distrib("lib64/nothing")), ErrorCodes.HardlinkInvalid);

    [Fact]
    public async Task Hardlink_to_a_later_entry_is_VDDK1009() =>
        await Fails(Vddk().AddHardlink(Distrib("lib64/early"), Distrib("lib64/late")).AddFile(Distrib("lib64/late"), "x"), ErrorCodes.HardlinkInvalid);

    [Fact]
    public async Task Hardlink_outside_the_tree_is_VDDK1009() =>
        await Fails(Vddk().AddHardlink(Distrib("lib64/shadow"), "/etc/shadow"), ErrorCodes.HardlinkInvalid);

    [Fact]
    public async Task Hardlink_to_a_directory_is_VDDK1009() =>
        await Fails(Vddk().AddHardlink(Distrib("lib64/dir"), Distrib("lib64")), ErrorCodes.HardlinkInvalid);

    [Fact]
    public async Task Hardlink_to_a_symlink_is_VDDK1009() =>
        await Fails(Vddk().AddHardlink(Distrib("lib64/again"), Distrib("lib64/libvixDiskLib.so")), ErrorCodes.HardlinkInvalid);

    [Fact]
    public async Task Character_device_is_VDDK1010() =>
        await Fails(Vddk().AddDevice(Distrib("dev-null")), ErrorCodes.SpecialFileEntry);

    [Fact]
    public async Task Block_device_is_VDDK1010() =>
        await Fails(Vddk().AddDevice(Distrib("sda"), block: true), ErrorCodes.SpecialFileEntry);

    [Fact]
    public async Task Fifo_is_VDDK1010() => await Fails(Vddk().AddFifo(Distrib("pipe")), ErrorCodes.SpecialFileEntry);

    [Fact]
    public async Task Zip_device_entry_is_VDDK1010() =>
        await Fails(Vddk(ArchiveCompression.Zip).AddDevice(Distrib("dev-null")), ErrorCodes.SpecialFileEntry);

    [Fact]
    public async Task Same_path_twice_is_VDDK1014() =>
        await Fails(Vddk().AddFile(Distrib("doc/a"), "1").AddFile(Distrib("doc/a"), "2"), ErrorCodes.DuplicateEntry);

    [Fact]
    public async Task Entry_below_a_file_is_VDDK1014() =>
        await Fails(Vddk().AddFile(Distrib("doc"), "file").AddFile(Distrib("doc/child"), "x"), ErrorCodes.DuplicateEntry);

    [Fact]
    public async Task Too_many_entries_is_VDDK1012_naming_the_option()
    {
        var error = await Fails(Vddk(), ErrorCodes.ArchiveTooLarge, new VddkArchiveReadOptions { MaxEntryCount = 3 });
        Assert.Contains("VddkMaxEntryCount", error.Message);
    }

    [Fact]
    public async Task Too_large_entry_is_VDDK1012_naming_the_option()
    {
        var error = await Fails(Vddk().AddFile(Distrib("doc/big"), new byte[5000]), ErrorCodes.ArchiveTooLarge, new VddkArchiveReadOptions { MaxEntryBytes = 8000 });
        Assert.Contains("VddkMaxEntrySize", error.Message);
        Assert.Contains("libvixDiskLib.so.8.0.1", error.Message);
    }

    [Fact]
    public async Task Too_large_total_is_VDDK1012_naming_the_option()
    {
        var error = await Fails(Vddk().AddFile(Distrib("doc/a"), new byte[6000]).AddFile(Distrib("doc/b"), new byte[6000]), ErrorCodes.ArchiveTooLarge, new VddkArchiveReadOptions { MaxTotalBytes = 8192 + 10000 });
        Assert.Contains("VddkMaxTotalSize", error.Message);
    }

    [Fact]
    public void Default_limits_are_far_above_a_real_vddk()
    {
        var options = VddkArchiveReadOptions.Default;
        Assert.Equal((4L << 30, 16L << 30, 200_000), (options.MaxEntryBytes, options.MaxTotalBytes, options.MaxEntryCount));
    }

    [Fact]
    public async Task Sparse_file_entry_is_rejected_with_VDDK1010()
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        new VddkArchiveBuilder { Format = TarEntryFormat.Gnu, Compression = ArchiveCompression.None }.AddMinimalVddk().AddFile(Distrib("doc/sparse"), "").Write(path);
        ArchiveMutations.RetypeTarEntry(path, Distrib("doc/sparse"), 'S');
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.SpecialFileEntry, error.Message);
    }

    [Theory]
    [InlineData("1.0")]
    [InlineData("0.1")]
    [InlineData("0.0")]
    public async Task Sparse_file_in_pax_form_is_rejected_with_VDDK1010_naming_the_real_path(string sparseVersion)
    {
        using var temp = new TempFolder();
        var path = GnuTarRepack.Write(Vddk(), temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar"), tree =>
        {
            using var file = File.Create(Path.Combine(tree, Top, "lib64", "holes"));
            file.SetLength(1024 * 1024);
            file.Position = 500_000;
            file.Write("data"u8);
        }, "--sparse", $"--sparse-version={sparseVersion}", "--format=posix");
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.SpecialFileEntry, error.Message);
        Assert.Contains($"'{Distrib("lib64/holes")}'", error.Message);
        Assert.Contains("sparse", error.Message);
    }

    [Theory]
    [InlineData(TarEntryFormat.Gnu)]
    [InlineData(TarEntryFormat.Ustar)]
    [InlineData(TarEntryFormat.Pax)]
    public async Task Name_that_is_not_UTF8_is_VDDK1007_showing_its_bytes(TarEntryFormat format)
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        // "cafX.txt" becomes Latin-1 "caf\xe9.txt". In pax form the name is the path record's value (always written).
        var name = format == TarEntryFormat.Pax ? Distrib("doc/" + new string('d', 100) + "/cafX.txt") : Distrib("doc/cafX.txt");
        new VddkArchiveBuilder { Format = format, Compression = ArchiveCompression.None }.AddMinimalVddk().AddFile(name, "a").Write(path);
        var bytes = await File.ReadAllBytesAsync(path);
        var at = bytes.AsSpan().IndexOf("cafX.txt"u8);
        bytes[at + 3] = 0xe9;
        await File.WriteAllBytesAsync(path, bytes);
        if (format != TarEntryFormat.Pax)
        {
            // Only the checksum of the header that holds the name changes.
            ArchiveMutations.PatchTarHeader(path, header => header[..100].IndexOf((ReadOnlySpan<byte>)[(byte)'c', (byte)'a', (byte)'f', 0xe9]) >= 0, _ => { });
        }

        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.EntryEscapesTree, error.Message);
        Assert.Contains("caf\\xe9.txt", error.Message);
        Assert.Contains("UTF-8", error.Message);
    }

    [Fact]
    public async Task Pax_path_with_a_line_break_is_VDDK1007()
    {
        // A path record (the name is too long for ustar) written with '_' and patched: pax records carry no checksum.
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        var tar = Vddk(ArchiveCompression.None).AddFile(Distrib("doc/" + new string('d', 100) + "/a_b"), "x").ToBytes();
        tar[tar.AsSpan().IndexOf("/a_b"u8) + 2] = (byte)'\n';
        await File.WriteAllBytesAsync(path, tar);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.EntryEscapesTree, error.Message);
        Assert.Contains("line break", error.Message);
    }
}
