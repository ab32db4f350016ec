using System.Formats.Tar;
using VddkBuild.Archive;
using VddkBuild.TestSupport.Archives;
using VddkBuild.Tests.Layers;
using static VddkBuild.TestSupport.Archives.VddkArchiveBuilder;

namespace VddkBuild.Tests.Archive;

public sealed class TarDialectTests
{
    private const string ArchiveName = "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz";

    private static async Task<(VddkArchiveContents Contents, RecordingSink Sink, CollectingLog Log)> ReadBuilt(VddkArchiveBuilder builder, string name = ArchiveName)
    {
        using var temp = new TempFolder();
        var path = temp.File(name);
        builder.Write(path);
        var sink = new RecordingSink();
        var log = new CollectingLog();
        var contents = await Read.Archive(path, sink, log);
        return (contents, sink, log);
    }

    private static string LongName(int length)
    {
        var prefix = Distrib("doc/");
        var parts = new List<string>();
        var total = prefix.Length;
        var i = 0;
        while (total < length)
        {
            var part = $"deep-folder-{i++:D3}-" + new string('x', 30);
            parts.Add(part);
            total += part.Length + 1;
        }
        return prefix + string.Join('/', parts) + "/file.txt";
    }

    [Theory]
    [InlineData(TarEntryFormat.Pax, 150)]
    [InlineData(TarEntryFormat.Pax, 400)]
    [InlineData(TarEntryFormat.Gnu, 150)]
    [InlineData(TarEntryFormat.Gnu, 400)]
    [InlineData(TarEntryFormat.Ustar, 150)]
    public async Task Long_names_and_long_link_targets_round_trip(TarEntryFormat format, int length)
    {
        var name = LongName(length);
        var longTarget = format == TarEntryFormat.Ustar ? "../libvixDiskLib.so.8.0.1" : string.Concat(Enumerable.Repeat("./", 60)) + "libvixDiskLib.so.8.0.1";
        // ustar's link field holds 100 bytes, so there the hard link points at a short name.
        var hardTarget = format == TarEntryFormat.Ustar ? Distrib("lib64/libvixDiskLib.so.8.0.1") : name;
        var builder = new VddkArchiveBuilder { Format = format }.AddMinimalVddk()
            .AddFile(name, "long")
            .AddSymlink(Distrib("lib64/long-link"), longTarget)
            .AddHardlink(name + "-hard", hardTarget);
        var (contents, sink, _) = await ReadBuilt(builder);

        Assert.True(name.Length >= length);
        Assert.Equal("long"u8.ToArray(), sink.Contents[name]);
        Assert.Equal(longTarget, contents.Entries.Single(e => e.Path == Distrib("lib64/long-link")).LinkTarget);
        var hard = contents.Entries.Single(e => e.Path == name + "-hard");
        Assert.Equal(VddkEntryKind.Hardlink, hard.Kind);
        Assert.Equal(hardTarget, hard.LinkTarget);
    }

    [Fact]
    public async Task V7_archives_with_slash_marked_directories_are_read()
    {
        var (contents, _, _) = await ReadBuilt(new VddkArchiveBuilder { Format = TarEntryFormat.V7 }.AddMinimalVddk());
        var lib64 = contents.Entries.Single(e => e.Path == Distrib("lib64"));
        Assert.Equal(VddkEntryKind.Directory, lib64.Kind);
        Assert.False(lib64.Synthesized);
    }

    [Fact]
    public async Task Pax_global_header_like_git_archive_writes_is_ignored()
    {
        var builder = new VddkArchiveBuilder().AddPaxGlobalHeader(new Dictionary<string, string> { ["comment"] = "0123456789abcdef" }).AddMinimalVddk();
        var (contents, _, _) = await ReadBuilt(builder);
        Assert.All(contents.Entries, e => Assert.StartsWith(Top, e.Path));
    }

    [Fact]
    public async Task Dot_slash_prefix_is_removed_and_root_entry_skipped()
    {
        var builder = new VddkArchiveBuilder { NamePrefix = "./" }.AddDirectory(".").AddMinimalVddk();
        var (contents, _, _) = await ReadBuilt(builder);
        Assert.Equal(Top, contents.Entries[0].Path);
        Assert.All(contents.Entries, e => Assert.False(e.Path.StartsWith('.')));
    }

    [Fact]
    public async Task Missing_directory_entries_are_synthesized_before_their_children()
    {
        var childTime = new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var builder = new VddkArchiveBuilder { DirectoryEntries = false }.AddMinimalVddk().AddFile(Distrib("doc/sub/readme.txt"), "x", mtime: childTime);
        var (contents, _, _) = await ReadBuilt(builder);

        var paths = contents.Entries.Select(e => e.Path).ToList();
        Assert.Equal([Top, Distrib("lib64"), Distrib("lib64/libvixDiskLib.so.8.0.1")], paths.Take(3));
        var sub = contents.Entries.Single(e => e.Path == Distrib("doc/sub"));
        Assert.True(sub.Synthesized);
        Assert.Equal(0x1ED, sub.Mode);
        Assert.Equal(childTime, sub.ModificationTime);
        Assert.True(paths.IndexOf(Distrib("doc")) < paths.IndexOf(Distrib("doc/sub")));
        Assert.True(paths.IndexOf(Distrib("doc/sub")) < paths.IndexOf(Distrib("doc/sub/readme.txt")));
    }

    [Fact]
    public async Task Directory_listed_after_its_children_gets_its_own_mode_and_time()
    {
        var time = new DateTimeOffset(2001, 9, 9, 1, 46, 40, TimeSpan.Zero);
        var builder = new VddkArchiveBuilder().AddMinimalVddk().AddFile(Distrib("doc/a.txt"), "a").AddDirectory(Distrib("doc"), 0x1C0, time);
        var (contents, sink, _) = await ReadBuilt(builder);

        var doc = Assert.Single(contents.Entries, e => e.Path == Distrib("doc"));
        Assert.Equal((0x1C0, time, false), (doc.Mode, doc.ModificationTime, doc.Synthesized));
        // The sink had the stand-in before the child, then gets the archive's entry.
        var deliveries = sink.Entries.Where(e => e.Path == Distrib("doc")).ToList();
        Assert.Equal([true, false], deliveries.Select(e => e.Synthesized));
        Assert.Equal(doc, deliveries[1]);
    }

    [Fact]
    public async Task Directory_listed_twice_is_VDDK1014()
    {
        using var temp = new TempFolder();
        var path = temp.File(ArchiveName);
        new VddkArchiveBuilder().AddMinimalVddk().AddFile(Distrib("doc/a.txt"), "a").AddDirectory(Distrib("doc")).AddDirectory(Distrib("doc")).Write(path);
        Assert.Equal(ErrorCodes.DuplicateEntry, (await Read.Failure(path)).Code);
    }

    [Fact]
    public async Task Modes_mtimes_and_hardlinks_are_kept()
    {
        var time = new DateTimeOffset(2024, 12, 24, 18, 30, 15, TimeSpan.Zero);
        var builder = new VddkArchiveBuilder().AddMinimalVddk()
            .AddDirectory(Distrib("bin64"), 0x1E8, time)
            .AddFile(Distrib("bin64/tool"), "tool", 0x1C9, time.AddSeconds(1))
            .AddHardlink(Distrib("bin64/tool-again"), Distrib("bin64/tool"));
        var (contents, _, _) = await ReadBuilt(builder);

        var bin64 = contents.Entries.Single(e => e.Path == Distrib("bin64"));
        Assert.Equal((0x1E8, time), (bin64.Mode, bin64.ModificationTime));
        var tool = contents.Entries.Single(e => e.Path == Distrib("bin64/tool"));
        Assert.Equal((0x1C9, time.AddSeconds(1), 4L), (tool.Mode, tool.ModificationTime, tool.Length));
        var again = contents.Entries.Single(e => e.Path == Distrib("bin64/tool-again"));
        Assert.Equal((VddkEntryKind.Hardlink, Distrib("bin64/tool"), 0L), (again.Kind, again.LinkTarget, again.Length));
        Assert.Equal(time.AddSeconds(1), contents.NewestModificationTime);
    }

    [Fact]
    public async Task Hardlink_written_with_dot_slash_prefix_names_the_normalised_target()
    {
        var builder = new VddkArchiveBuilder { NamePrefix = "./" }.AddMinimalVddk()
            .AddFile(Distrib("a"), "a")
            .AddHardlink(Distrib("b"), "./" + Distrib("a"));
        var (contents, _, _) = await ReadBuilt(builder);
        Assert.Equal(Distrib("a"), contents.Entries.Single(e => e.Path == Distrib("b")).LinkTarget);
    }

    [Fact]
    public async Task Content_the_sink_does_not_read_is_skipped()
    {
        using var temp = new TempFolder();
        var path = temp.File(ArchiveName);
        new VddkArchiveBuilder().AddMinimalVddk()
            .AddFile(Distrib("doc/big"), FixtureContent.Bytes(300_000, 5, "big"))
            .AddFile(Distrib("doc/after"), "after").Write(path);

        var partial = new RecordingSink(readAtMost: 1000);
        await Read.Archive(path, partial);
        Assert.Equal(1000, partial.Contents[Distrib("doc/big")].Length);
        Assert.Equal("after"u8.ToArray(), partial.Contents[Distrib("doc/after")]);

        var none = new RecordingSink(readAtMost: 0);
        var contents = await Read.Archive(path, none);
        Assert.Equal(300_000, contents.Entries.Single(e => e.Path == Distrib("doc/big")).Length);
    }

    [Fact]
    public async Task Content_stream_ends_exactly_at_the_entry_length()
    {
        var content = FixtureContent.Bytes(10_000, 9, "exact");
        var (_, sink, _) = await ReadBuilt(new VddkArchiveBuilder().AddMinimalVddk().AddFile(Distrib("doc/exact"), content));
        Assert.Equal(content, sink.Contents[Distrib("doc/exact")]);
    }

    [Theory]
    [InlineData("--format=gnu", "4294967294")]   // base-256 fields
    [InlineData("--format=posix", "4294967294")] // pax uid/gid records
    [InlineData("--format=gnu", "2147483648")]
    public async Task Owner_ids_beyond_Int32_are_accepted(string format, string id)
    {
        using var temp = new TempFolder();
        var path = GnuTarRepack.Write(new VddkArchiveBuilder().AddMinimalVddk(), temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar"), null, format, $"--owner={id}", $"--group={id}");
        var contents = await Read.Archive(path);
        Assert.Equal("8.0.1", contents.Version);
        Assert.Equal(5, contents.Entries.Count);
    }

    [Theory]
    [InlineData(ArchiveCompression.None)]
    [InlineData(ArchiveCompression.Gzip)]
    public async Task A_tar_without_its_end_of_archive_blocks_is_read(ArchiveCompression compression)
    {
        using var temp = new TempFolder();
        var tar = new VddkArchiveBuilder { Compression = ArchiveCompression.None }.AddMinimalVddk().AddFile(Distrib("doc/last"), "last").ToBytes();
        var end = tar.Length;
        while (end >= 512 && tar.AsSpan(end - 512, 512).IndexOfAnyExcept((byte)0) < 0)
        {
            end -= 512;
        }
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64" + compression.Extension());
        await using (var file = File.Create(path))
        {
            await using Stream output = compression == ArchiveCompression.Gzip ? new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest) : file;
            await output.WriteAsync(tar.AsMemory(0, end));
        }
        var sink = new RecordingSink();
        await Read.Archive(path, sink);
        Assert.Equal("last"u8.ToArray(), sink.Contents[Distrib("doc/last")]);
    }

    [Fact]
    public async Task A_tar_with_one_end_of_archive_block_is_read()
    {
        using var temp = new TempFolder();
        var tar = new VddkArchiveBuilder { Compression = ArchiveCompression.None }.AddMinimalVddk().ToBytes();
        var end = tar.Length;
        while (tar.AsSpan(end - 1024, 512).IndexOfAnyExcept((byte)0) < 0)
        {
            end -= 512;
        }
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        await File.WriteAllBytesAsync(path, tar[..end]);
        Assert.Equal("8.0.1", (await Read.Archive(path)).Version);
    }

    [Fact]
    public async Task A_pax_record_value_with_a_line_break_is_read_by_its_length()
    {
        // TarWriter refuses a line break in a value, so the record is written with '_' and patched: pax records
        // carry no checksum. The value also holds what looks like a size record, which must not be taken as one.
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        var tar = new VddkArchiveBuilder { Compression = ArchiveCompression.None }.AddMinimalVddk()
            .AddRaw(() => new PaxTarEntry(TarEntryType.RegularFile, Distrib("doc/x"), new Dictionary<string, string> { ["comment"] = "line one_99 size=7_line two" })
            {
                DataStream = new MemoryStream("x"u8.ToArray()),
            })
            .AddFile(Distrib("doc/after"), "after").ToBytes();
        var at = tar.AsSpan().IndexOf("line one_"u8);
        tar[at + 8] = (byte)'\n';
        tar[at + 8 + 10] = (byte)'\n';
        await File.WriteAllBytesAsync(path, tar);

        var sink = new RecordingSink();
        var contents = await Read.Archive(path, sink);
        Assert.Equal("x"u8.ToArray(), sink.Contents[Distrib("doc/x")]);
        Assert.Equal("after"u8.ToArray(), sink.Contents[Distrib("doc/after")]);
        Assert.Equal(8, contents.Entries.Count); // with the synthesised doc/
    }

    [Theory]
    [InlineData("x")] // a pax header with times only, as bsdtar --format=pax writes for every entry
    [InlineData("")]  // an empty pax header
    public async Task Ustar_prefix_after_a_pax_header_without_a_path_is_part_of_the_name(string records)
    {
        // System.Formats.Tar drops the prefix field of an entry that follows a pax header; Go, GNU tar and
        // libarchive join prefix and name, so the reader has to as well (the entry would land outside the top folder).
        using var temp = new TempFolder();
        var name = LongName(150);
        var tar = new VddkArchiveBuilder { Format = TarEntryFormat.Ustar, Compression = ArchiveCompression.None }.AddMinimalVddk()
            .AddFile(name, "deep").AddFile(Distrib("doc/after"), "after").ToBytes();
        var at = UstarHeaderWithPrefix(tar);
        var pax = PaxHeader('x', records == "x" ? "30 mtime=1700000000.123456789\n30 atime=1700000000.123456789\n" : "");
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        await File.WriteAllBytesAsync(path, [.. tar.AsSpan(0, at), .. pax, .. tar.AsSpan(at)]);

        var sink = new RecordingSink();
        var contents = await Read.Archive(path, sink);
        Assert.Equal("deep"u8.ToArray(), sink.Contents[name]);
        Assert.Equal("after"u8.ToArray(), sink.Contents[Distrib("doc/after")]);
        Assert.Contains(contents.Entries, e => e.Path == name);
    }

    [Fact]
    public async Task Ustar_prefix_after_a_pax_global_header_is_part_of_the_name()
    {
        using var temp = new TempFolder();
        var name = LongName(150);
        var tar = new VddkArchiveBuilder { Format = TarEntryFormat.Ustar, Compression = ArchiveCompression.None }.AddMinimalVddk()
            .AddFile(name, "deep").ToBytes();
        var at = UstarHeaderWithPrefix(tar);
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar");
        await File.WriteAllBytesAsync(path, [.. tar.AsSpan(0, at), .. PaxHeader('g', "19 comment=abcdefg\n"), .. tar.AsSpan(at)]);

        var sink = new RecordingSink();
        await Read.Archive(path, sink);
        Assert.Equal("deep"u8.ToArray(), sink.Contents[name]);
    }

    [Theory]
    [InlineData("--format=pax")]  // pax headers with times on every entry
    [InlineData("--format=paxr")] // pax headers only where needed (macOS tar's default); a UTF-8 owner needs one
    public async Task Bsdtar_pax_archives_with_names_split_into_prefix_and_name_are_read(string format)
    {
        using var temp = new TempFolder();
        var name = LongName(150);
        var tree = Directory.CreateDirectory(temp.File("tree")).FullName;
        var source = temp.File("source.tar");
        new VddkArchiveBuilder { Compression = ArchiveCompression.None }.AddMinimalVddk().AddFile(name, "deep").Write(source);
        CliTool.Run("tar", "-xf", source, "-C", tree);
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        CliTool.Run("bsdtar", "-C", tree, format, "--uname", "b\u00e4rbel", "-czf", path, Top);

        var sink = new RecordingSink();
        var contents = await Read.Archive(path, sink);
        Assert.Equal("deep"u8.ToArray(), sink.Contents[name]);
        Assert.Equal("8.0.1", contents.Version);
    }

    /// <summary>Offset of the first ustar header whose name is split into prefix and name.</summary>
    private static int UstarHeaderWithPrefix(byte[] tar)
    {
        for (var at = 0; at + 512 <= tar.Length; at += 512)
        {
            var header = tar.AsSpan(at, 512);
            if (header[257..263].SequenceEqual("ustar\0"u8) && header[345] != 0)
            {
                return at;
            }
        }
        throw new InvalidOperationException("no ustar header with a prefix");
    }

    /// <summary>A pax header (type x or g) with <paramref name="records"/>, padded to whole blocks.</summary>
    private static byte[] PaxHeader(char type, string records)
    {
        var data = System.Text.Encoding.ASCII.GetBytes(records);
        var block = new byte[512 + (data.Length + 511) / 512 * 512];
        "PaxHeader/entry"u8.CopyTo(block);
        "0000644\0"u8.CopyTo(block.AsSpan(100));
        "0000000\0"u8.CopyTo(block.AsSpan(108));
        "0000000\0"u8.CopyTo(block.AsSpan(116));
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(data.Length, 8).PadLeft(11, '0') + "\0").CopyTo(block, 124);
        "00000000000\0"u8.CopyTo(block.AsSpan(136));
        block[156] = (byte)type;
        "ustar\000"u8.CopyTo(block.AsSpan(257));
        "        "u8.CopyTo(block.AsSpan(148));
        var sum = 0;
        foreach (var b in block.AsSpan(0, 512))
        {
            sum += b;
        }
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(block, 148);
        data.CopyTo(block, 512);
        return block;
    }
}
