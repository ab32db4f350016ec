using System.Buffers.Binary;
using System.IO.Compression;
using VddkBuild.Archive;
using VddkBuild.TestSupport.Archives;

namespace VddkBuild.Tests.Archive;

public sealed class ArchiveFormatTests
{
    private static readonly SampleVddkArchiveOptions Small = SampleVddkArchiveOptions.Small with { DocumentationPages = 3 };

    private static List<(string, VddkEntryKind, int, long, string?)> Shape(VddkArchiveContents contents) =>
        contents.Entries.Select(e => (e.Path, e.Kind, e.Mode, e.Length, e.LinkTarget)).ToList();

    [Fact]
    public async Task Vddk8_targz_gives_version_build_and_entries_parents_first()
    {
        using var temp = new TempFolder();
        var log = new CollectingLog();
        var sink = new RecordingSink();
        var contents = await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, Small), sink, log);

        Assert.Equal("8.0.1", contents.Version);
        Assert.Equal("21562716", contents.BuildNumber);
        Assert.Empty(log.Warnings);
        Assert.Equal(0, contents.DroppedMacMetadataCount);
        Assert.Equal(sink.Entries, contents.Entries);
        Assert.Equal(VddkArchiveBuilder.DefaultTime, contents.NewestModificationTime);
        var seen = new HashSet<string>();
        foreach (var entry in contents.Entries)
        {
            var parent = Path.GetDirectoryName(entry.Path)!.Replace('\\', '/');
            Assert.True(parent.Length == 0 || seen.Contains(parent), $"{entry.Path} delivered before its parent");
            seen.Add(entry.Path);
        }
        Assert.Equal("libvixDiskLib.so.8", contents.Entries.Single(e => e.Path == "vmware-vix-disklib-distrib/lib64/libvixDiskLib.so").LinkTarget);
    }

    [Fact]
    public async Task Vddk9_targz_gives_four_part_version_and_build()
    {
        using var temp = new TempFolder();
        var contents = await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 500_000, DocumentationPages = 2 }));
        Assert.Equal("9.0.0.0", contents.Version);
        Assert.Equal("24742305", contents.BuildNumber);
    }

    [Theory]
    [InlineData(ArchiveCompression.None)]
    [InlineData(ArchiveCompression.Xz)]
    [InlineData(ArchiveCompression.Bzip2)]
    [InlineData(ArchiveCompression.Zip)]
    public async Task Other_containers_give_the_same_tree_as_targz(ArchiveCompression compression)
    {
        using var temp = new TempFolder();
        var reference = await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, Small));
        var otherSink = new RecordingSink();
        var gzipSink = new RecordingSink();
        var other = await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = compression }), otherSink);
        await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, Small), gzipSink);

        Assert.Equal("8.0.1", other.Version);
        Assert.Equal(Shape(reference), Shape(other));
        Assert.Equal(gzipSink.Contents.Keys.Order(), otherSink.Contents.Keys.Order());
        foreach (var (path, bytes) in gzipSink.Contents)
        {
            Assert.Equal(bytes, otherSink.Contents[path]);
        }
    }

    [Fact]
    public async Task Format_is_recognised_by_content_not_extension()
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.zip");
        SampleVddkArchive.Write(path, Small); // gzip bytes under a .zip name
        Assert.Equal("8.0.1", (await Read.Archive(path)).Version);
    }

    [Fact]
    public async Task Multi_member_gzip_is_read_completely()
    {
        using var temp = new TempFolder();
        var tar = SampleVddkArchive.CreateBuilder(Small with { Compression = ArchiveCompression.None }).ToBytes();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        await using (var file = File.Create(path))
        {
            foreach (var part in new[] { tar[..(tar.Length / 3)], tar[(tar.Length / 3)..] })
            {
                await using var member = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true);
                await member.WriteAsync(part);
            }
        }
        var contents = await Read.Archive(path);
        var single = await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = ArchiveCompression.None }));
        Assert.Equal(Shape(single), Shape(contents));
    }

    private static byte[] Xz(byte[] data)
    {
        using var memory = new MemoryStream();
        using (var xz = new XzStoreWriter(memory, leaveOpen: true))
        {
            xz.Write(data);
        }
        return memory.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)] // stream padding: zero bytes, a multiple of four, after a stream
    public async Task Concatenated_xz_streams_are_read_completely(int padding)
    {
        using var temp = new TempFolder();
        var tar = SampleVddkArchive.CreateBuilder(Small with { Compression = ArchiveCompression.None }).ToBytes();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.xz");
        await File.WriteAllBytesAsync(path, [.. Xz(tar[..(tar.Length / 3)]), .. new byte[padding], .. Xz(tar[(tar.Length / 3)..]), .. new byte[padding]]);
        var contents = await Read.Archive(path);
        var single = await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = ArchiveCompression.None }));
        Assert.Equal(Shape(single), Shape(contents));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0 })]              // padding that is not a multiple of four
    [InlineData(new byte[] { 1, 2, 3, 4, 5, 6 })]  // not an xz stream
    public async Task Xz_followed_by_other_bytes_is_VDDK1003(byte[] after)
    {
        using var temp = new TempFolder();
        var tar = SampleVddkArchive.CreateBuilder(Small with { Compression = ArchiveCompression.None }).ToBytes();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.xz");
        await File.WriteAllBytesAsync(path, [.. Xz(tar), .. after]);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
    }

    [Fact]
    public async Task Zip_keeps_unix_modes_and_symlinks()
    {
        using var temp = new TempFolder();
        var contents = await Read.Archive(SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = ArchiveCompression.Zip }));
        Assert.Equal(0x1A4, contents.Entries.Single(e => e.Path.EndsWith("/libgcc_s.so.1", StringComparison.Ordinal)).Mode);
        var link = contents.Entries.Single(e => e.Path.EndsWith("/libvixDiskLib.so", StringComparison.Ordinal));
        Assert.Equal(VddkEntryKind.Symlink, link.Kind);
        Assert.Equal("libvixDiskLib.so.8", link.LinkTarget);
    }

    [Fact]
    public async Task Zip_entry_named_with_a_trailing_slash_is_a_directory_whatever_its_mode_says()
    {
        // unzip, bsdtar and Python's zipfile make a directory of it even when its Unix mode says regular file.
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.zip");
        new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }.AddMinimalVddk().AddDirectory(VddkArchiveBuilder.Distrib("doc"), 0x1ED).Write(path);
        ArchiveMutations.PatchZipHeaders(path, (header, central) =>
        {
            if (central && System.Text.Encoding.UTF8.GetString(header.Slice(46, BinaryPrimitives.ReadUInt16LittleEndian(header[28..]))).EndsWith("/doc/", StringComparison.Ordinal))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(header[38..], 0x81ED0000); // S_IFREG | 0755
            }
        });

        var contents = await Read.Archive(path);

        var doc = contents.Entries.Single(e => e.Path == VddkArchiveBuilder.Distrib("doc"));
        Assert.Equal(VddkEntryKind.Directory, doc.Kind);
        Assert.Equal(0x1ED, doc.Mode);
    }

    [Theory]
    [InlineData(3, "doc/back\\slash.txt")] // Unix: an ordinary character, as unzip keeps it
    [InlineData(19, "doc/back\\slash.txt")] // macOS
    [InlineData(0, "doc/back/slash.txt")]   // MS-DOS / Windows FAT: the folder separator
    [InlineData(11, "doc/back/slash.txt")]  // NTFS as Info-ZIP records it
    [InlineData(14, "doc/back/slash.txt")]  // VFAT
    public async Task A_backslash_in_a_zip_name_separates_folders_only_for_DOS_and_Windows_hosts(byte host, string expected)
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.zip");
        new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }.AddMinimalVddk().AddDirectory(VddkArchiveBuilder.Distrib("doc")).AddFile(VddkArchiveBuilder.Distrib("doc/back\\slash.txt"), "b").Write(path);
        ArchiveMutations.SetZipHost(path, host);
        var sink = new RecordingSink();
        await Read.Archive(path, sink);
        Assert.Equal("b"u8.ToArray(), sink.Contents[VddkArchiveBuilder.Distrib(expected)]);
    }

    [Theory]
    [InlineData((ushort)12, "bzip2")]
    [InlineData((ushort)14, "LZMA")]
    [InlineData((ushort)93, "zstd")]
    [InlineData((ushort)99, "WinZip AES")]
    public async Task Zip_with_another_compression_method_is_VDDK1002_naming_it(ushort method, string name)
    {
        using var temp = new TempFolder();
        var path = SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = ArchiveCompression.Zip });
        ArchiveMutations.SetZipMethod(path, method);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveFormatUnsupported, error.Message);
        Assert.Contains(name, error.Message);
        Assert.Contains("deflate", error.Message);
        Assert.DoesNotContain("Download it again", error.Message);
    }

    [Fact]
    public async Task Encrypted_zip_is_VDDK1002_saying_so()
    {
        using var temp = new TempFolder();
        var path = SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = ArchiveCompression.Zip });
        ArchiveMutations.SetZipEncrypted(path);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveFormatUnsupported, error.Message);
        Assert.Contains("encrypted", error.Message);
        Assert.Contains("no password", error.Message);
    }

    [Fact]
    public async Task Zip_whose_central_directory_points_two_entries_at_one_local_file_is_VDDK1003()
    {
        // The quoted-overlap zip bomb: many names for the same compressed data (unzip: "overlapped components
        // (possible zip bomb)"). Two names, identical content, so every CRC and size agrees.
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.zip");
        new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }.AddMinimalVddk()
            .AddFile(VddkArchiveBuilder.Distrib("doc/a.txt"), "same").AddFile(VddkArchiveBuilder.Distrib("doc/b.txt"), "same").Write(path);
        uint? offsetOfA = null;
        ArchiveMutations.PatchZipHeaders(path, (header, central) =>
        {
            if (!central)
            {
                return;
            }
            var name = System.Text.Encoding.UTF8.GetString(header.Slice(46, BinaryPrimitives.ReadUInt16LittleEndian(header[28..])));
            if (name.EndsWith("doc/a.txt", StringComparison.Ordinal))
            {
                offsetOfA = BinaryPrimitives.ReadUInt32LittleEndian(header[42..]);
            }
            else if (name.EndsWith("doc/b.txt", StringComparison.Ordinal))
            {
                BinaryPrimitives.WriteUInt32LittleEndian(header[42..], offsetOfA!.Value);
            }
        });

        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
        Assert.Contains("overlap", error.Message);
    }

    [Fact]
    public async Task Zip_whose_central_directory_keeps_offsets_and_sizes_in_ZIP64_fields_is_read()
    {
        // The overlap check takes each entry's local offset and compressed size from the ZIP64 extra field when the
        // header holds 0xFFFFFFFF there (as writers do past 4 GiB); here every entry is rewritten that way.
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.zip");
        new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }.AddMinimalVddk().AddFile(VddkArchiveBuilder.Distrib("doc/a.txt"), "a").Write(path);
        var zip = await File.ReadAllBytesAsync(path);
        var end = zip.AsSpan().LastIndexOf("PK\u0005\u0006"u8);
        var (count, size, offset) = (BinaryPrimitives.ReadUInt16LittleEndian(zip.AsSpan(end + 10)), (int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(end + 12)), (int)BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(end + 16)));
        using var directory = new MemoryStream();
        for (int i = 0, at = offset; i < count; i++)
        {
            var header = zip.AsSpan(at, 46).ToArray();
            var (name, extra, comment) = (BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(28)), BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(30)), BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(32)));
            var zip64 = new byte[28];
            BinaryPrimitives.WriteUInt16LittleEndian(zip64, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(zip64.AsSpan(2), 24);
            BinaryPrimitives.WriteUInt64LittleEndian(zip64.AsSpan(4), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(24)));  // uncompressed
            BinaryPrimitives.WriteUInt64LittleEndian(zip64.AsSpan(12), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(20))); // compressed
            BinaryPrimitives.WriteUInt64LittleEndian(zip64.AsSpan(20), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(42))); // local header
            header.AsSpan(20, 8).Fill(0xFF);
            header.AsSpan(42, 4).Fill(0xFF);
            BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(30), (ushort)(extra + zip64.Length));
            directory.Write(header);
            directory.Write(zip.AsSpan(at + 46, name + extra));
            directory.Write(zip64);
            directory.Write(zip.AsSpan(at + 46 + name + extra, comment));
            at += 46 + name + extra + comment;
        }
        var tail = zip.AsSpan(end).ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(tail.AsSpan(12), (uint)directory.Length);
        await File.WriteAllBytesAsync(path, [.. zip.AsSpan(0, offset), .. directory.ToArray(), .. tail]);

        var contents = await Read.Archive(path);
        Assert.Contains(contents.Entries, e => e.Path == VddkArchiveBuilder.Distrib("doc/a.txt"));
    }

    [Fact]
    public async Task Zip_name_that_is_not_UTF8_is_VDDK1007_showing_its_bytes()
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.zip");
        new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }.AddMinimalVddk().AddFile(VddkArchiveBuilder.Distrib("doc/cafX.txt"), "a").Write(path);
        var bytes = await File.ReadAllBytesAsync(path);
        for (var at = bytes.AsSpan().IndexOf("cafX.txt"u8); at >= 0; at = bytes.AsSpan().IndexOf("cafX.txt"u8))
        {
            bytes[at + 3] = 0xe9; // Latin-1 'é', in the local and the central header
        }
        await File.WriteAllBytesAsync(path, bytes);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.EntryEscapesTree, error.Message);
        Assert.Contains("caf\\xe9.txt", error.Message);
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 })]
    [InlineData(new byte[] { 0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0 })]
    [InlineData(new byte[] { (byte)'<', (byte)'h', (byte)'t', (byte)'m', (byte)'l', (byte)'>' })]
    [InlineData(new byte[0])]
    public async Task Unknown_format_is_VDDK1002(byte[] bytes)
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        await File.WriteAllBytesAsync(path, bytes);
        Assert.Equal(ErrorCodes.ArchiveFormatUnsupported, (await Read.Failure(path)).Code);
    }

    [Theory]
    [InlineData(new byte[] { (byte)'L', (byte)'Z', (byte)'I', (byte)'P', 1, 0x0c, 0, 0 }, "lzip")]          // tar --lzip
    [InlineData(new byte[] { (byte)'0', (byte)'7', (byte)'0', (byte)'7', (byte)'0', (byte)'1', (byte)'0' }, "cpio")] // newc (bsdtar --format=newc, rpm2cpio)
    [InlineData(new byte[] { (byte)'0', (byte)'7', (byte)'0', (byte)'7', (byte)'0', (byte)'7', (byte)'0' }, "cpio")] // odc (cpio -H odc)
    [InlineData(new byte[] { 0xc7, 0x71, 0, 0, 0, 0, 0, 0 }, "cpio")]                                          // old binary cpio
    public async Task Known_formats_that_cannot_be_read_are_VDDK1002_naming_them(byte[] head, string name)
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        await File.WriteAllBytesAsync(path, [.. head, .. new byte[1024]]);
        var error = await Read.Failure(path);
        Assert.Equal(ErrorCodes.ArchiveFormatUnsupported, error.Code);
        Assert.Contains(name, error.Message);
    }

    [Fact]
    public async Task Gzip_compressed_twice_is_VDDK1002_saying_to_decompress_once()
    {
        using var temp = new TempFolder();
        var inner = temp.File("inner.tar.gz");
        SampleVddkArchive.Write(inner, SampleVddkArchiveOptions.Small);
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        await using (var file = File.Create(path))
        await using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        {
            await gzip.WriteAsync(await File.ReadAllBytesAsync(inner));
        }
        var error = await Read.Failure(path);
        Assert.Equal(ErrorCodes.ArchiveFormatUnsupported, error.Code);
        Assert.Contains("compressed twice", error.Message);
        Assert.Contains("gzip -dc", error.Message);
    }

    [Fact]
    public async Task Gzip_of_something_else_than_tar_is_VDDK1002()
    {
        using var temp = new TempFolder();
        var path = temp.File("vddk.tar.gz");
        await using (var file = File.Create(path))
        await using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        {
            await gzip.WriteAsync(FixtureContent.Bytes(10_000, 3, "not a tar"));
        }
        var error = await Read.Failure(path);
        Assert.Equal(ErrorCodes.ArchiveFormatUnsupported, error.Code);
        Assert.Contains("does not contain a tar", error.Message);
    }

    [Fact]
    public async Task Missing_file_is_VDDK1001()
    {
        using var temp = new TempFolder();
        Assert.Equal(ErrorCodes.ArchiveNotFound, (await Read.Failure(temp.File("nope.tar.gz"))).Code);
        Assert.Equal(ErrorCodes.ArchiveNotFound, (await Read.Failure(temp.Path)).Code);
    }
}
