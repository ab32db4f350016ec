using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using VddkBuild.Archive;
using VddkBuild.Layers;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Registry;
using VddkBuild.Tests.Archive;

namespace VddkBuild.Tests.Layers;

/// <summary>The archive file used as the layer as it is, and every reason it must not be.</summary>
public sealed class ArchiveAsLayerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static Task<VddkLayer> MakeAsync(string archive, string work, RecordingBuildLog log, LayerWriterOptions? options = null, bool useCache = false, CancellationToken cancellationToken = default) =>
        VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, options ?? new LayerWriterOptions(), work, log, cancellationToken, useCache);

    private static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static byte[] Gunzip(string path)
    {
        using var gzip = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var tar = new MemoryStream();
        gzip.CopyTo(tar);
        return tar.ToArray();
    }

    private static VddkArchiveBuilder Builder(Action<VddkArchiveBuilder>? configure = null)
    {
        var builder = SampleVddkArchive.CreateBuilder(SampleVddkArchiveOptions.Small);
        configure?.Invoke(builder);
        return builder;
    }

    private string Write(VddkArchiveBuilder builder, string name = "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz")
    {
        var path = Path.Combine(_temp.Sub("in-" + Guid.NewGuid().ToString("N")), name);
        builder.Write(path);
        return path;
    }

    [Fact]
    public async Task A_VMware_shaped_archive_is_the_layer_byte_for_byte()
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small);
        var log = new RecordingBuildLog();

        var made = await MakeAsync(archive, _temp.Sub("work"), log);

        Assert.Equal(LayerOrigin.Archive, made.Origin);
        var bytes = await File.ReadAllBytesAsync(archive);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(made.Layer.FilePath));
        Assert.Equal(Sha256(bytes), made.Layer.Descriptor.Digest.Value);
        Assert.Equal(bytes.Length, made.Layer.Descriptor.Size);
        Assert.Equal(Sha256(Gunzip(archive)), made.Layer.DiffId.Value);
        Assert.Equal($"sha256-{made.Layer.Descriptor.Digest.Hex}.tar.gz", Path.GetFileName(made.Layer.FilePath));
        Assert.Contains("used unchanged", log.AllText);
    }

    [Fact]
    public async Task The_archive_as_the_layer_has_passed_the_same_checks_and_found_the_same_tree_as_the_normal_path()
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Small);
        var verbatim = await MakeAsync(archive, _temp.Sub("a"), new RecordingBuildLog());
        var normal = await MakeAsync(archive, _temp.Sub("b"), new RecordingBuildLog(), new LayerWriterOptions { UseArchiveAsLayer = false });

        Assert.Equal(LayerOrigin.Archive, verbatim.Origin);
        Assert.Equal(LayerOrigin.Written, normal.Origin);
        Assert.Equal(normal.Contents.Version, verbatim.Contents.Version);
        Assert.Equal(normal.Contents.BuildNumber, verbatim.Contents.BuildNumber);
        Assert.Equal(normal.Contents.Entries, verbatim.Contents.Entries);

        // Same names, types, link targets, modes and content; the owners are the archive's, not 0:0.
        var layerEntries = ReadLayer(verbatim.Layer.FilePath);
        var normalEntries = ReadLayer(normal.Layer.FilePath);
        Assert.Equal(normalEntries.Select(e => (e.Name, e.Type, e.Link, e.Mode, e.Sha)), layerEntries.Select(e => (e.Name, e.Type, e.Link, e.Mode, e.Sha)));
        Assert.All(layerEntries, e => Assert.Equal((1000, 1000), (e.Uid, e.Gid)));
        Assert.All(normalEntries, e => Assert.Equal((0, 0), (e.Uid, e.Gid)));
    }

    private static List<(string Name, TarEntryType Type, string Link, int Mode, string Sha, int Uid, int Gid)> ReadLayer(string path)
    {
        var list = new List<(string, TarEntryType, string, int, string, int, int)>();
        using var reader = new TarReader(new GZipStream(File.OpenRead(path), CompressionMode.Decompress));
        while (reader.GetNextEntry() is { } entry)
        {
            var sha = entry.DataStream is { } data ? Convert.ToHexStringLower(SHA256.HashData(data)) : "";
            var type = entry.EntryType is TarEntryType.V7RegularFile ? TarEntryType.RegularFile : entry.EntryType;
            var mode = type == TarEntryType.SymbolicLink ? 0x1FF : (int)entry.Mode;
            list.Add((entry.Name.TrimEnd('/'), type, entry.LinkName, mode, sha, entry.Uid, entry.Gid));
        }
        return list;
    }

    [Theory]
    [InlineData(TarEntryFormat.Gnu)]
    [InlineData(TarEntryFormat.Pax)]
    [InlineData(TarEntryFormat.Ustar)]
    public async Task Archives_in_every_POSIX_tar_dialect_qualify(TarEntryFormat format)
    {
        var archive = Write(Builder(b => b.Format = format));
        var log = new RecordingBuildLog();
        var made = await MakeAsync(archive, _temp.Sub("work"), log);
        Assert.True(made.Origin == LayerOrigin.Archive, log.AllText);
    }

    [Theory]
    [InlineData("gnu")]
    [InlineData("posix")]
    [InlineData("ustar")]
    public async Task An_archive_packed_by_GNU_tar_qualifies(string format)
    {
        // Unpack the sample with the project's own extraction, then pack the tree with the real tar command.
        var sample = SampleVddkArchive.WriteTo(_temp.Sub("sample"), SampleVddkArchiveOptions.Small);
        var tree = _temp.Sub("tree");
        await VddkExtraction.ExtractAsync(sample, tree, VddkArchiveReadOptions.Default, new RecordingBuildLog(), CancellationToken.None);
        var archive = Path.Combine(_temp.Sub("packed"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        CliTool.Run("tar", $"--format={format}", "--owner=1000", "--group=1000", "--sort=name", "-czf", archive, "-C", tree, "vmware-vix-disklib-distrib");

        var log = new RecordingBuildLog();
        var made = await MakeAsync(archive, _temp.Sub("work"), log);

        Assert.True(made.Origin == LayerOrigin.Archive, log.AllText);
        Assert.Equal(Sha256(await File.ReadAllBytesAsync(archive)), made.Layer.Descriptor.Digest.Value);
    }

    public static TheoryData<string, string> Refusals => new()
    {
        { "file not world-readable", "not readable by others" },
        { "directory not world-searchable", "not readable and searchable" },
        { "setuid file", "setuid" },
        { "./ prefix", "canonical form" },
        { "no directory entries", "parent directory" },
        { "macOS metadata", "macOS" },
        { "owner id 100000", "owner id" },
        { "owner id 4294967294, GNU base-256", "uid" },
        { "owner id 4294967294, pax record", "uid" },
        { "no end-of-archive blocks", "no end-of-archive block" },
        { "v7 headers", "v7" },
        { "file capability xattr", "SCHILY.xattr.security.capability" },
        { "global pax header", "global pax header" },
        { "two gzip members", "one member" },
        { "zero padding after the gzip data", "zero bytes follow the gzip data" },
        { "hard link with another mode", "hard link" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task An_archive_the_layer_would_change_is_written_normally_with_the_reason(string variant, string reason)
    {
        var archive = Variant(variant);
        var log = new RecordingBuildLog();

        var made = await MakeAsync(archive, _temp.Sub("work"), log);
        var normal = await MakeAsync(archive, _temp.Sub("normal"), new RecordingBuildLog(), new LayerWriterOptions { UseArchiveAsLayer = false });

        Assert.Equal(LayerOrigin.Written, made.Origin);
        var refusal = log.Lines.Single(l => l.Message.Contains("cannot be the layer as it is")).Message;
        Assert.True(refusal.Contains(reason, StringComparison.Ordinal), refusal);
        Assert.Equal(normal.Layer, made.Layer with { FilePath = normal.Layer.FilePath });
        Assert.Equal(normal.Contents.Entries, made.Contents.Entries);
        Assert.Single(Directory.GetFiles(Path.Combine(_temp.Path, "work", "layers")));
    }

    private string Variant(string variant)
    {
        string F(string relative) => VddkArchiveBuilder.Distrib(relative);
        switch (variant)
        {
            case "file not world-readable":
                return Write(Builder(b => b.Remove(F("doc/README")).AddFile(F("doc/README"), "private", 0x1A0)));
            case "directory not world-searchable":
                return Write(Builder(b => b.AddDirectory(F("doc/private"), 0x1E8).AddFile(F("doc/private/a"), "a")));
            case "setuid file":
                return Write(Builder(b => b.AddFile(F("bin64/tool"), "x", 0x9ED)));
            case "./ prefix":
                return Write(Builder(b => { b.NamePrefix = "./"; b.AddRaw(() => new GnuTarEntry(TarEntryType.Directory, "./") { Mode = (UnixFileMode)0x1ED }); }));
            case "no directory entries":
                return Write(Builder(b => b.DirectoryEntries = false));
            case "macOS metadata":
                return Write(Builder(b => { b.Format = TarEntryFormat.Pax; b.MacMetadata = true; }));
            case "owner id 100000":
                return Write(Builder(b => b.OwnerId = 100000));
            case "owner id 4294967294, GNU base-256":
                return GnuTarRepack.Write(Builder(), Path.Combine(_temp.Sub("in-gnu"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz"), null, "--format=gnu", "--owner=4294967294", "--group=4294967294", "-z");
            case "owner id 4294967294, pax record":
                return GnuTarRepack.Write(Builder(), Path.Combine(_temp.Sub("in-pax"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz"), null, "--format=posix", "--owner=4294967294", "--group=4294967294", "-z");
            case "no end-of-archive blocks":
                {
                    var tar = Builder(b => b.Compression = ArchiveCompression.None).ToBytes();
                    var end = tar.Length;
                    while (tar.AsSpan(end - 512, 512).IndexOfAnyExcept((byte)0) < 0)
                    {
                        end -= 512;
                    }
                    var path = Path.Combine(_temp.Sub("in-end"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
                    using var output = new GZipStream(File.Create(path), CompressionLevel.Optimal);
                    output.Write(tar.AsSpan(0, end));
                    return path;
                }
            case "v7 headers":
                return Write(Builder(b => b.Format = TarEntryFormat.V7));
            case "file capability xattr":
                return Write(Builder(b => b.AddRaw(() => new PaxTarEntry(TarEntryType.RegularFile, F("bin64/ping"), new Dictionary<string, string>
                {
                    ["SCHILY.xattr.security.capability"] = "\u0001\u0000\u0000\u0002",
                })
                { Mode = (UnixFileMode)0x1ED, DataStream = new MemoryStream([1, 2, 3]) })));
            case "global pax header":
                return Write(Builder(b => b.AddPaxGlobalHeader(new Dictionary<string, string> { ["comment"] = "0123abcd" })));
            case "two gzip members":
                {
                    var tar = Builder(b => b.Compression = ArchiveCompression.None).ToBytes();
                    var path = Path.Combine(_temp.Sub("in-two"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
                    using var output = File.Create(path);
                    foreach (var part in new[] { tar.AsMemory(0, tar.Length / 2), tar.AsMemory(tar.Length / 2) })
                    {
                        using var member = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true);
                        member.Write(part.Span);
                    }
                    return path;
                }
            case "zero padding after the gzip data":
                {
                    var path = Write(Builder());
                    File.AppendAllBytes(path, new byte[4096]);
                    return path;
                }
            case "hard link with another mode":
                return Write(Builder(b => b.AddFile(F("bin64/a"), "same", 0x1ED).AddHardlink(F("bin64/b"), F("bin64/a"), 0x1A4)));
            default:
                throw new ArgumentOutOfRangeException(nameof(variant));
        }
    }

    private const string ArchiveName = "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz";

    /// <summary>The sample with crafted entries appended; refused as the layer with <paramref name="reason"/>, and the
    /// written layer equal to the normal path's. Returns the written layer's entries.</summary>
    private async Task<List<(string Name, TarEntryType Type, string Link, int Mode, string Sha, int Uid, int Gid)>> AssertRefusedAsync(string reason, params byte[][] extra)
    {
        var archive = Path.Combine(_temp.Sub("in-" + Guid.NewGuid().ToString("N")), ArchiveName);
        CraftedTar.WriteSampleWith(archive, extra);
        var log = new RecordingBuildLog();

        var made = await MakeAsync(archive, _temp.Sub("w-" + Guid.NewGuid().ToString("N")), log);
        var normal = await MakeAsync(archive, _temp.Sub("n-" + Guid.NewGuid().ToString("N")), new RecordingBuildLog(), new LayerWriterOptions { UseArchiveAsLayer = false });

        Assert.True(made.Origin == LayerOrigin.Written, log.AllText);
        var refusal = log.Lines.Single(l => l.Message.Contains("cannot be the layer as it is")).Message;
        Assert.True(refusal.Contains(reason, StringComparison.Ordinal), refusal);
        Assert.Equal(normal.Layer, made.Layer with { FilePath = normal.Layer.FilePath });
        return ReadLayer(made.Layer.FilePath);
    }

    [Fact]
    public async Task A_ustar_header_with_a_star_trailer_is_refused_and_the_written_layer_has_the_checked_name()
    {
        // Go's archive/tar reads "tar\0" at 508 as a star header: a 131-byte prefix (".../d.../..") and then an
        // access time ("01234567012"), so a runtime would unpack ".../doc/d.../../smuggled.so" = ".../smuggled.so".
        var p131 = VddkArchiveBuilder.Distrib("doc/");
        p131 += new string('d', 131 - p131.Length - 3) + "/..";
        Assert.Equal(131, p131.Length);
        var prefix = p131 + "01234567012";
        var entries = await AssertRefusedAsync("offsets 500-511",
            CraftedTar.File("smuggled.so", "NOT VALIDATED\n", prefix, h => "tar\0"u8.CopyTo(h.AsSpan(508))));

        Assert.Contains(entries, e => e.Name == prefix + "/smuggled.so");
        Assert.DoesNotContain(entries, e => e.Name == VddkArchiveBuilder.Distrib("smuggled.so"));
    }

    [Theory]
    [InlineData(500)]
    [InlineData(511)]
    public async Task A_header_with_any_byte_after_its_last_field_is_refused(int offset)
    {
        await AssertRefusedAsync("offsets 500-511",
            CraftedTar.File("extra.txt", "x", VddkArchiveBuilder.Distrib("doc"), h => h[offset] = (byte)'x'));
    }

    [Theory]
    [InlineData(329, "zzzzzzz\0", "device major number")]
    [InlineData(337, "1 2\0\0\0\0\0", "device minor number")]
    public async Task A_number_field_Go_cannot_parse_is_refused(int offset, string field, string reason)
    {
        // Go's archive/tar parses device numbers on every header and fails on these ("invalid tar header").
        await AssertRefusedAsync($"{reason} is not a plain octal number",
            CraftedTar.File("extra.txt", "x", VddkArchiveBuilder.Distrib("doc"), h => System.Text.Encoding.ASCII.GetBytes(field).CopyTo(h, offset)));
    }

    [Theory]
    [InlineData("\0\0\0\0\0\0\0\0")]
    [InlineData("        ")]
    [InlineData(" 000000 ")]
    public async Task Empty_or_padded_device_numbers_qualify(string field)
    {
        var archive = Path.Combine(_temp.Sub("in-dev"), ArchiveName);
        CraftedTar.WriteSampleWith(archive, CraftedTar.File("extra.txt", "x", VddkArchiveBuilder.Distrib("doc"), h =>
        {
            System.Text.Encoding.ASCII.GetBytes(field).CopyTo(h, 329);
            System.Text.Encoding.ASCII.GetBytes(field).CopyTo(h, 337);
        }));
        var log = new RecordingBuildLog();
        var made = await MakeAsync(archive, _temp.Sub("work"), log);
        Assert.True(made.Origin == LayerOrigin.Archive, log.AllText);
    }

    [Theory]
    [InlineData("mtime=abc")]
    [InlineData("atime=12x")]
    [InlineData("ctime=.5")]
    [InlineData("mtime=-5")]
    [InlineData("mtime=1681171200.5x")]
    public async Task A_pax_time_Go_rejects_or_reads_differently_is_refused(string record)
    {
        // Go's parsePAXTime fails the whole archive on these (or, for "-5", reads a time .NET ignores).
        var entries = await AssertRefusedAsync("is not a time Go and .NET read alike",
            CraftedTar.Pax(record), CraftedTar.File(VddkArchiveBuilder.Distrib("doc/extra.txt"), "x"));
        Assert.Contains(entries, e => e.Name == VddkArchiveBuilder.Distrib("doc/extra.txt"));
    }

    [Fact]
    public async Task A_pax_owner_name_with_a_NUL_is_refused()
    {
        // Go's reader rejects the record (validPAXRecord); .NET keeps it.
        await AssertRefusedAsync("contains a NUL byte", CraftedTar.Pax("uname=a\0b"), CraftedTar.File(VddkArchiveBuilder.Distrib("doc/extra.txt"), "x"));
    }

    [Theory]
    [InlineData("99999999999999")]
    [InlineData("253402300800.5")]
    public async Task A_pax_mtime_past_the_year_9999_is_accepted_clamped_and_never_the_layer_as_it_is(string mtime)
    {
        // System.Formats.Tar fails on it ("Value was either too large or too small"); Go reads it.
        var archive = Path.Combine(_temp.Sub("in-" + Guid.NewGuid().ToString("N")), ArchiveName);
        CraftedTar.WriteSampleWith(archive, CraftedTar.Pax("mtime=" + mtime), CraftedTar.File(VddkArchiveBuilder.Distrib("doc/extra.txt"), "x"));
        var log = new RecordingBuildLog();

        var made = await MakeAsync(archive, _temp.Sub("work"), log);

        Assert.True(made.Origin == LayerOrigin.Written, log.AllText);
        Assert.Contains("is not a time Go and .NET read alike", log.AllText);
        var extra = made.Contents.Entries.Single(e => e.Path == VddkArchiveBuilder.Distrib("doc/extra.txt"));
        Assert.Equal(DateTimeOffset.MaxValue.ToUnixTimeSeconds(), extra.ModificationTime.ToUnixTimeSeconds());
    }

    [Theory]
    [InlineData("mtime=1681171200")]
    [InlineData("mtime=1681171200.123456789")]
    [InlineData("atime=1681171200.")]
    [InlineData("ctime=0")]
    public async Task A_pax_time_both_readers_read_alike_qualifies(string record)
    {
        var archive = Path.Combine(_temp.Sub("in-time"), ArchiveName);
        CraftedTar.WriteSampleWith(archive, CraftedTar.Pax(record), CraftedTar.File(VddkArchiveBuilder.Distrib("doc/extra.txt"), "x"));
        var log = new RecordingBuildLog();
        var made = await MakeAsync(archive, _temp.Sub("work"), log);
        Assert.True(made.Origin == LayerOrigin.Archive, log.AllText);
    }

    [Fact]
    public async Task A_tar_with_one_end_of_archive_block_is_the_layer_as_it_is()
    {
        // Go's reader (containerd, CRI-O, podman) stops at the first zero block; podman pulled such an image.
        var archive = Path.Combine(_temp.Sub("in-one-end"), ArchiveName);
        CraftedTar.WriteSampleWith(archive, endBlocks: 1);
        var log = new RecordingBuildLog();
        var made = await MakeAsync(archive, _temp.Sub("work"), log);
        Assert.True(made.Origin == LayerOrigin.Archive, log.AllText);
        Assert.Equal(Sha256(Gunzip(archive)), made.Layer.DiffId.Value);
    }

    [Fact]
    public async Task A_crafted_clean_ustar_entry_qualifies()
    {
        // The crafted entries of the tests around are refused for what they carry, not for being crafted.
        var archive = Path.Combine(_temp.Sub("in-clean"), ArchiveName);
        CraftedTar.WriteSampleWith(archive, CraftedTar.File("extra.txt", "x", VddkArchiveBuilder.Distrib("doc")));
        var log = new RecordingBuildLog();
        var made = await MakeAsync(archive, _temp.Sub("work"), log);
        Assert.True(made.Origin == LayerOrigin.Archive, log.AllText);
    }

    [Fact]
    public async Task A_hard_link_with_its_targets_mode_qualifies()
    {
        string F(string relative) => VddkArchiveBuilder.Distrib(relative);
        var archive = Write(Builder(b => b.AddFile(F("bin64/a"), "same", 0x1ED).AddHardlink(F("bin64/b"), F("bin64/a"), 0x1ED)));
        var made = await MakeAsync(archive, _temp.Sub("work"), new RecordingBuildLog());
        Assert.Equal(LayerOrigin.Archive, made.Origin);
    }

    [Fact]
    public async Task A_SOURCE_DATE_EPOCH_older_than_the_entries_needs_the_normal_layer()
    {
        var archive = Write(Builder());
        var log = new RecordingBuildLog();
        var made = await MakeAsync(archive, _temp.Sub("work"), log, new LayerWriterOptions { SourceDateEpoch = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        Assert.Equal(LayerOrigin.Written, made.Origin);
        Assert.Contains("SOURCE_DATE_EPOCH", log.AllText);

        var newer = await MakeAsync(archive, _temp.Sub("work2"), new RecordingBuildLog(), new LayerWriterOptions { SourceDateEpoch = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero) });
        Assert.Equal(LayerOrigin.Archive, newer.Origin);
    }

    [Fact]
    public async Task Turned_off_the_layer_is_always_written()
    {
        var archive = Write(Builder());
        var made = await MakeAsync(archive, _temp.Sub("work"), new RecordingBuildLog(), new LayerWriterOptions { UseArchiveAsLayer = false });
        Assert.Equal(LayerOrigin.Written, made.Origin);
    }

    [Fact]
    public async Task Bytes_between_gzip_members_fail_either_way_and_never_make_the_layer()
    {
        // Go's gzip reader fails at the junk; GZipStream stops there quietly, and the member after it is complete.
        var archive = Write(Builder());
        var second = Builder(b => b.Compression = ArchiveCompression.None).ToBytes();
        using (var output = new FileStream(archive, FileMode.Append))
        {
            output.Write("JUNK-NOT-GZIP"u8);
            using var member = new GZipStream(output, CompressionLevel.Optimal);
            member.Write(second);
        }
        foreach (var useArchive in new[] { true, false })
        {
            var work = _temp.Sub("work-" + useArchive);
            var error = await Assert.ThrowsAsync<VddkException>(() => MakeAsync(archive, work, new RecordingBuildLog(), new LayerWriterOptions { UseArchiveAsLayer = useArchive }));
            Assert.Equal(ErrorCodes.ArchiveCorrupt, error.Code);
            Assert.Empty(Directory.GetFiles(work, "*", SearchOption.AllDirectories));
        }
    }

    [Fact]
    public async Task A_bad_archive_fails_with_its_own_code_and_leaves_no_file()
    {
        var archive = Write(Builder(b => b.AddSymlink(VddkArchiveBuilder.Distrib("lib64/escape"), "/etc/passwd")));
        var work = _temp.Sub("work");

        var error = await Assert.ThrowsAsync<VddkException>(() => MakeAsync(archive, work, new RecordingBuildLog()));

        Assert.Equal(ErrorCodes.SymlinkEscapesTree, error.Code);
        Assert.Empty(Directory.GetFiles(work, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_cancelled_build_leaves_no_file()
    {
        var archive = SampleVddkArchive.WriteTo(_temp.Sub("in"), SampleVddkArchiveOptions.Vddk8);
        var work = _temp.Sub("work");
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(30));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => MakeAsync(archive, work, new RecordingBuildLog(), cancellationToken: cancel.Token));

        Assert.Empty(Directory.GetFiles(work, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task The_cache_remembers_the_archive_as_the_layer()
    {
        var archive = Write(Builder());
        var work = _temp.Sub("work");
        var first = await MakeAsync(archive, work, new RecordingBuildLog(), useCache: true);
        var second = await MakeAsync(archive, work, new RecordingBuildLog(), useCache: true);
        var off = await MakeAsync(archive, work, new RecordingBuildLog(), new LayerWriterOptions { UseArchiveAsLayer = false }, useCache: true);

        Assert.Equal(LayerOrigin.Archive, first.Origin);
        Assert.Equal(LayerOrigin.Cache, second.Origin);
        Assert.Equal(first.Layer, second.Layer);
        Assert.Equal(LayerOrigin.Written, off.Origin); // another setting, another key
    }

    [Fact]
    public async Task A_copy_of_a_cached_archive_is_read_while_hashed_and_the_reading_is_dropped_when_the_cache_has_it()
    {
        // A new path (no digest memo): the archive is hashed and, meanwhile, read as a candidate layer.
        var archive = Write(Builder(b => b.AddFile(VddkArchiveBuilder.Distrib("doc/._notes"), "AppleDouble", 0x1A4)));
        var work = _temp.Sub("work");
        var firstLog = new RecordingBuildLog();
        var first = await MakeAsync(archive, work, firstLog, useCache: true);
        var copy = Path.Combine(_temp.Sub("copy"), Path.GetFileName(archive));
        File.Copy(archive, copy);
        var upload = new RecordingUpload();
        var log = new RecordingBuildLog();

        var second = await VddkLayerFactory.MakeAsync(copy, VddkArchiveReadOptions.Default, new LayerWriterOptions(), work, log, CancellationToken.None, upload: upload);

        Assert.Equal(LayerOrigin.Cache, second.Origin);
        Assert.Equal(first.Layer, second.Layer);
        // The first build's warnings are given again, once: none from the dropped reading.
        static List<string> Warned(RecordingBuildLog l) => [.. l.Lines.Where(x => x.Level == "warn").Select(x => $"{x.Code} {x.Message}")];
        Assert.NotEmpty(Warned(firstLog));
        Assert.Equal(Warned(firstLog), Warned(log));
        // If the reading got as far as offering its copy for upload, it was withdrawn; no temporary file stays.
        Assert.True(upload.Begun == upload.Abandoned, $"begun {upload.Begun}, abandoned {upload.Abandoned}");
        Assert.Empty(upload.Ready);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(work, "layers"), "*.tmp"));
    }

    [Fact]
    public async Task A_new_archive_is_hashed_while_it_is_read_and_the_upload_learns_the_digest()
    {
        var archive = Write(Builder());
        var upload = new RecordingUpload();

        var made = await VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, new LayerWriterOptions(), _temp.Sub("work"), new RecordingBuildLog(), CancellationToken.None, upload: upload);

        Assert.Equal(LayerOrigin.Archive, made.Origin);
        Assert.Equal(1, upload.Begun);
        Assert.Equal(0, upload.Abandoned);
        Assert.Equal(made.Layer.Descriptor.Digest, await upload.Expected!);
        Assert.Equal(made.Layer.Descriptor.Size, upload.Length);
        // Checked and published: the bytes sent may become the blob now, with the layer's own descriptor.
        Assert.Equal([made.Layer.Descriptor], upload.Ready);
    }

    [Fact]
    public async Task A_candidate_refused_at_its_end_is_withdrawn_from_the_upload_and_never_made_ready()
    {
        // Valid, but not the layer as it is: a setuid file is only found when its entry is read.
        var archive = Write(Builder(b => b.AddFile(VddkArchiveBuilder.Distrib("bin64/tool"), "x", 0x9ED)));
        var upload = new RecordingUpload();

        var made = await VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, new LayerWriterOptions(), _temp.Sub("work"), new RecordingBuildLog(), CancellationToken.None, upload: upload);

        Assert.Equal(LayerOrigin.Written, made.Origin);
        Assert.Equal(1, upload.Begun);
        Assert.Equal(1, upload.Abandoned);
        Assert.Empty(upload.Ready);
    }

    private sealed class RecordingUpload : ILayerUploadStarter
    {
        public int Begun;
        public int Abandoned;
        public long Length;
        public Task<VddkBuild.Oci.Digest?>? Expected;

        public void Begin(VddkBuild.IO.GrowingFile file, long length, Task<VddkBuild.Oci.Digest?> expectedDigest)
        {
            Interlocked.Increment(ref Begun);
            (Length, Expected) = (length, expectedDigest);
        }

        public void Abandon(string reason) => Interlocked.Increment(ref Abandoned);

        public System.Collections.Concurrent.ConcurrentQueue<VddkBuild.Oci.Descriptor> Ready { get; } = new();

        void ILayerUploadStarter.Ready(VddkBuild.Oci.Descriptor layer) => Ready.Enqueue(layer);
    }
}
