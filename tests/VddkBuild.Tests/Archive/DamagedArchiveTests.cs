using VddkBuild.TestSupport.Archives;

namespace VddkBuild.Tests.Archive;

/// <summary>Truncated and corrupted archives: VDDK1003 with the underlying reason.</summary>
public sealed class DamagedArchiveTests
{
    private static readonly SampleVddkArchiveOptions Small = SampleVddkArchiveOptions.Small with { DocumentationPages = 3 };

    private static async Task<VddkException> Damaged(ArchiveCompression compression, Action<string> damage)
    {
        using var temp = new TempFolder();
        var path = SampleVddkArchive.WriteTo(temp.Path, Small with { Compression = compression });
        damage(path);
        var error = await Read.Failure(path);
        Assert.Equal(ErrorCodes.ArchiveCorrupt, error.Code);
        Assert.Contains(path, error.Message);
        return error;
    }

    [Fact]
    public async Task Gzip_cut_in_half_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Gzip, path => ArchiveMutations.TruncateTo(path, 0.5));

    [Fact]
    public async Task Gzip_without_its_trailer_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Gzip, path => ArchiveMutations.Truncate(path, new FileInfo(path).Length - 4));

    [Fact]
    public async Task Gzip_with_wrong_trailer_crc_is_VDDK1003() =>
        // GZipStream notices in the read that reaches the trailer (and drops that read's bytes, so where the reading
        // stops depends on read sizes), or the trailer check after the last entry does: VDDK1003 either way.
        await Damaged(ArchiveCompression.Gzip, ArchiveMutations.CorruptGzipTrailerCrc);

    [Fact]
    public async Task Gzip_with_damaged_compressed_data_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Gzip, ArchiveMutations.CorruptMiddle);

    [Fact]
    public async Task Tar_cut_inside_a_file_is_VDDK1003_saying_the_content_is_short()
    {
        var error = await Damaged(ArchiveCompression.None, path => ArchiveMutations.TruncateTo(path, 0.6));
        Assert.Contains("truncated", error.Message);
    }

    [Theory]
    [InlineData(512 + 100)]  // inside the second header (lib64/)
    [InlineData(1024 + 200)] // inside the third (the library file's)
    public async Task Tar_cut_inside_a_header_is_VDDK1003(int keep)
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        new VddkArchiveBuilder { Format = System.Formats.Tar.TarEntryFormat.Gnu, Compression = ArchiveCompression.None }.AddMinimalVddk().Write(path);
        ArchiveMutations.Truncate(path, keep);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public async Task Tar_header_with_bad_checksum_is_VDDK1003()
    {
        // The second header (after the 512-byte top folder header; GNU format, no extended headers) gets a new name.
        await Damaged(ArchiveCompression.None, path => ArchiveMutations.Overwrite(path, 512 + 10, "tampered"u8));
    }

    [Fact]
    public async Task Xz_cut_in_half_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Xz, path => ArchiveMutations.TruncateTo(path, 0.5));

    [Fact]
    public async Task Bzip2_cut_in_half_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Bzip2, path => ArchiveMutations.TruncateTo(path, 0.5));

    [Fact]
    public async Task Zip_with_damaged_entry_data_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Zip, ArchiveMutations.CorruptMiddle);

    [Fact]
    public async Task Long_name_header_claiming_a_huge_size_is_VDDK1003_without_loading_it()
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        new VddkArchiveBuilder { Format = System.Formats.Tar.TarEntryFormat.Gnu, Compression = ArchiveCompression.None }
            .AddMinimalVddk().AddFile(VddkArchiveBuilder.Distrib("doc/" + new string('n', 150)), "x").Write(path);
        ArchiveMutations.SetTarHeaderSize(path, 'L', 3L * 1024 * 1024 * 1024);
        var error = await Read.Failure(path);
        Assert.Equal(ErrorCodes.ArchiveCorrupt, error.Code);
        Assert.Contains("metadata header", error.Message);
    }

    [Fact]
    public async Task Padding_after_the_end_of_the_tar_is_accepted()
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        var tar = new VddkArchiveBuilder { Compression = ArchiveCompression.None }.AddMinimalVddk().ToBytes();
        await using (var file = File.Create(path))
        await using (var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest))
        {
            await gzip.WriteAsync(tar);
            await gzip.WriteAsync(new byte[6 * 1024 * 1024]); // more than the trailing data the reader inflates
        }
        Assert.Equal("8.0.1", (await Read.Archive(path)).Version);
    }

    private static async Task<string> TwoMembers(TempFolder temp, Func<byte[], byte[]>? damageSecond = null)
    {
        var tar = SampleVddkArchive.CreateBuilder(Small with { Compression = ArchiveCompression.None }).ToBytes();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        await File.WriteAllBytesAsync(path, [.. Gzip(tar[..(tar.Length / 3)]), .. (damageSecond ?? (b => b))(Gzip(tar[(tar.Length / 3)..]))]);
        return path;
    }

    private static byte[] Gzip(byte[] data, System.IO.Compression.CompressionLevel level = System.IO.Compression.CompressionLevel.Fastest)
    {
        using var memory = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(memory, level))
        {
            gzip.Write(data);
        }
        return memory.ToArray();
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(4096, false)]
    [InlineData(10240, true)]
    public async Task Zero_padding_after_the_gzip_data_is_accepted(int zeros, bool twoMembers)
    {
        using var temp = new TempFolder();
        var path = twoMembers ? await TwoMembers(temp) : SampleVddkArchive.WriteTo(temp.Path, Small);
        await File.AppendAllBytesAsync(path, new byte[zeros]);
        Assert.Equal("8.0.1", (await Read.Archive(path)).Version);
    }

    [Fact]
    public async Task Data_after_the_gzip_data_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Gzip, path => File.AppendAllBytes(path, "not gzip at all\n"u8.ToArray()));

    [Fact]
    public async Task Zero_padding_after_a_truncated_gzip_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Gzip, path =>
        {
            ArchiveMutations.Truncate(path, new FileInfo(path).Length - 4);
            File.AppendAllBytes(path, new byte[4096]);
        });

    [Theory]
    [InlineData(4)]   // inside the trailer
    [InlineData(200)] // inside the compressed data
    public async Task Gzip_whose_last_member_is_cut_off_is_VDDK1003(int cut)
    {
        using var temp = new TempFolder();
        var path = await TwoMembers(temp, member => member[..^cut]);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
    }

    [Fact]
    public async Task Gzip_whose_last_member_has_a_wrong_length_is_VDDK1003()
    {
        using var temp = new TempFolder();
        var path = await TwoMembers(temp, member =>
        {
            member[^1] ^= 0x40;
            return member;
        });
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
    }

    /// <summary>What `printf '' | gzip -n` writes: a header, an empty fixed block (03 00) and an all-zero trailer.</summary>
    private static readonly byte[] EmptyMember = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 4096)]
    public async Task An_empty_last_gzip_member_is_accepted(bool twoMembers, int zeros)
    {
        // gzip -t and tar -tzf accept it; its trailer (CRC 0, length 0) is no zero padding.
        using var temp = new TempFolder();
        var path = twoMembers ? await TwoMembers(temp) : SampleVddkArchive.WriteTo(temp.Path, Small);
        await File.AppendAllBytesAsync(path, [.. EmptyMember, .. new byte[zeros]]);
        Assert.Equal("8.0.1", (await Read.Archive(path)).Version);
    }

    [Fact]
    public async Task A_cut_off_empty_last_gzip_member_is_VDDK1003() =>
        await Damaged(ArchiveCompression.Gzip, path => File.AppendAllBytes(path, EmptyMember[..^1]));

    [Fact]
    public async Task A_last_gzip_member_holding_many_gzip_header_look_alikes_is_accepted()
    {
        // A VDDK may ship .gz files: stored (not compressed again) in the last member, each of their headers is a
        // candidate for that member's start, tried from the end backwards before the real one.
        using var temp = new TempFolder();
        var lookAlikes = Enumerable.Repeat<byte[]>([0x1f, 0x8b, 8, 0, .. "XXXXXXXXXXXX"u8], 200).SelectMany(b => b).ToArray();
        var builder = SampleVddkArchive.CreateBuilder(Small with { Compression = ArchiveCompression.None });
        builder.AddFile(VddkArchiveBuilder.Distrib("doc/gz-headers.bin"), lookAlikes);
        var tar = builder.ToBytes();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        await File.WriteAllBytesAsync(path, [.. Gzip(tar[..4096]), .. Gzip(tar[4096..], System.IO.Compression.CompressionLevel.NoCompression)]);
        Assert.Equal("8.0.1", (await Read.Archive(path)).Version);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bytes_between_gzip_members_are_VDDK1003(bool emptyLastMember)
    {
        // GZipStream stops quietly at the junk; gzip -t exits 2 ('trailing garbage ignored'). The member after the
        // junk (here a whole second archive, or an empty member) must not make the file pass.
        using var temp = new TempFolder();
        var path = SampleVddkArchive.WriteTo(temp.Path, Small);
        byte[] last = emptyLastMember ? EmptyMember : Gzip(new VddkArchiveBuilder { Compression = ArchiveCompression.None }.AddMinimalVddk().ToBytes());
        await File.AppendAllBytesAsync(path, [.. "JUNK-NOT-GZIP"u8, .. last]);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
        Assert.Contains("no gzip member", error.Message);
    }

    [Fact]
    public async Task Several_members_and_empty_members_between_them_are_accepted()
    {
        using var temp = new TempFolder();
        var tar = SampleVddkArchive.CreateBuilder(Small with { Compression = ArchiveCompression.None }).ToBytes();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        await File.WriteAllBytesAsync(path, [.. EmptyMember, .. Gzip(tar[..4096]), .. EmptyMember, .. EmptyMember, .. Gzip(tar[4096..]), .. EmptyMember, .. EmptyMember]);
        Assert.Equal("8.0.1", (await Read.Archive(path)).Version);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bytes_then_the_archive_again_after_the_gzip_data_are_VDDK1003(bool tiny)
    {
        // The member after the junk carries the trailer of everything GZipStream read before it stopped; a tiny
        // archive lies wholly within the decompressor's last read.
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        if (tiny)
        {
            new VddkArchiveBuilder().AddMinimalVddk().Write(path);
        }
        else
        {
            SampleVddkArchive.Write(path, Small);
        }
        var archive = await File.ReadAllBytesAsync(path);
        await File.AppendAllBytesAsync(path, [.. "JUNK"u8, .. archive]);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
        Assert.Contains("no gzip member", error.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bytes_then_a_copy_of_the_trailer_after_the_gzip_data_are_VDDK1003(bool twoMembers)
    {
        using var temp = new TempFolder();
        var path = twoMembers ? await TwoMembers(temp) : SampleVddkArchive.WriteTo(temp.Path, Small);
        var archive = await File.ReadAllBytesAsync(path);
        await File.AppendAllBytesAsync(path, [.. "JUNK"u8, .. archive[^8..]]);
        var error = await Read.Failure(path);
        Assert.True(error.Code == ErrorCodes.ArchiveCorrupt, error.Message);
        Assert.Contains("follow", error.Message);
    }
}
