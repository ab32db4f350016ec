using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using SharpCompress.Compressors.BZip2;

namespace VddkBuild.TestSupport.Archives;

/// <summary>
/// Composes VDDK-shaped archives entry by entry, including hostile ones: any tar format (pax, GNU, ustar, v7),
/// devices, fifos, raw tar entries, "./" prefixes, missing directory entries, macOS metadata, and any compression.
/// Paths are given as they should appear in the archive (usually starting with <see cref="Top"/>); the
/// <see cref="NamePrefix"/> is added when writing.
/// </summary>
public sealed class VddkArchiveBuilder
{
    public const string Top = "vmware-vix-disklib-distrib";

    /// <summary>2023-04-11 00:00:00 UTC, a fixed default so that fixture archives are reproducible.</summary>
    public static readonly DateTimeOffset DefaultTime = new(2023, 4, 11, 0, 0, 0, TimeSpan.Zero);

    private readonly List<Item> _items = [];

    public TarEntryFormat Format { get; set; } = TarEntryFormat.Pax;
    public ArchiveCompression Compression { get; set; } = ArchiveCompression.Gzip;

    /// <summary>Prefix for every name, e.g. "./" as `tar -C dir .` writes it.</summary>
    public string NamePrefix { get; set; } = string.Empty;

    /// <summary>False leaves out every directory entry (as `tar cf x.tar $(find . -type f)` would).</summary>
    public bool DirectoryEntries { get; set; } = true;

    /// <summary>Adds what macOS bsdtar/Finder add: "._name" AppleDouble companions (tar) or "__MACOSX/" entries (zip), and
    /// LIBARCHIVE.xattr.* pax records (pax format).</summary>
    public bool MacMetadata { get; set; }

    /// <summary>Numeric owner and group of every entry (GNU tar records the creating user's).</summary>
    public int OwnerId { get; set; }
    public int GroupId { get; set; }

    /// <summary>Owner and group names (ustar, GNU and pax formats); empty leaves them out.</summary>
    public string OwnerName { get; set; } = string.Empty;
    public string GroupName { get; set; } = string.Empty;

    /// <summary>Gzip level for <see cref="ArchiveCompression.Gzip"/>.</summary>
    public CompressionLevel GzipLevel { get; set; } = CompressionLevel.Optimal;

    public IReadOnlyList<string> Paths => _items.Select(i => i.Path).ToList();

    public static string Distrib(string relative) => relative.Length == 0 ? Top : $"{Top}/{relative}";

    public VddkArchiveBuilder AddDirectory(string path, int mode = 0x1ED, DateTimeOffset? mtime = null) =>
        Add(new Item(path, TarEntryType.Directory, mode, mtime ?? DefaultTime));

    public VddkArchiveBuilder AddFile(string path, byte[] content, int mode = 0x1A4, DateTimeOffset? mtime = null) =>
        Add(new Item(path, TarEntryType.RegularFile, mode, mtime ?? DefaultTime) { Content = content });

    public VddkArchiveBuilder AddFile(string path, string text, int mode = 0x1A4, DateTimeOffset? mtime = null) =>
        AddFile(path, Encoding.UTF8.GetBytes(text), mode, mtime);

    /// <summary>A file of generated content (<see cref="FixtureContent"/>), streamed when written.</summary>
    public VddkArchiveBuilder AddGeneratedFile(string path, long length, ulong seed, int mode = 0x1ED, DateTimeOffset? mtime = null) =>
        Add(new Item(path, TarEntryType.RegularFile, mode, mtime ?? DefaultTime) { GeneratedLength = length, Seed = seed });

    public VddkArchiveBuilder AddSymlink(string path, string target, DateTimeOffset? mtime = null) =>
        Add(new Item(path, TarEntryType.SymbolicLink, 0x1FF, mtime ?? DefaultTime) { LinkName = target });

    public VddkArchiveBuilder AddHardlink(string path, string target, int mode = 0x1ED, DateTimeOffset? mtime = null) =>
        Add(new Item(path, TarEntryType.HardLink, mode, mtime ?? DefaultTime) { LinkName = target });

    public VddkArchiveBuilder AddDevice(string path, bool block = false) =>
        Add(new Item(path, block ? TarEntryType.BlockDevice : TarEntryType.CharacterDevice, 0x1B6, DefaultTime));

    public VddkArchiveBuilder AddFifo(string path) => Add(new Item(path, TarEntryType.Fifo, 0x1A4, DefaultTime));

    /// <summary>A tar entry exactly as given (name not prefixed); for what the other methods cannot express.</summary>
    public VddkArchiveBuilder AddRaw(Func<TarEntry> create) =>
        Add(new Item(string.Empty, TarEntryType.RegularFile, 0, DefaultTime) { Raw = create });

    /// <summary>A pax global header (git archive writes one first, with the commit id).</summary>
    public VddkArchiveBuilder AddPaxGlobalHeader(IReadOnlyDictionary<string, string> records) =>
        AddRaw(() => new PaxGlobalExtendedAttributesTarEntry(records));

    public VddkArchiveBuilder Remove(string path)
    {
        _items.RemoveAll(i => i.Path == path);
        return this;
    }

    /// <summary>
    /// The smallest tree that passes every check: the top folder, lib64, and the libvixDiskLib chain
    /// (.so -> .so.MAJOR -> .so.VERSION).
    /// </summary>
    public VddkArchiveBuilder AddMinimalVddk(string version = "8.0.1")
    {
        var major = version.Split('.')[0];
        return AddDirectory(Top)
            .AddDirectory(Distrib("lib64"))
            .AddFile(Distrib($"lib64/libvixDiskLib.so.{version}"), FixtureContent.Bytes(8192, 1, "libvixDiskLib"), 0x1ED)
            .AddSymlink(Distrib($"lib64/libvixDiskLib.so.{major}"), $"libvixDiskLib.so.{version}")
            .AddSymlink(Distrib("lib64/libvixDiskLib.so"), $"libvixDiskLib.so.{major}");
    }

    private VddkArchiveBuilder Add(Item item)
    {
        _items.Add(item);
        return this;
    }

    public void Write(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1024 * 1024);
        WriteTo(file);
    }

    public byte[] ToBytes()
    {
        using var memory = new MemoryStream();
        WriteTo(memory);
        return memory.ToArray();
    }

    public void WriteTo(Stream output)
    {
        switch (Compression)
        {
            case ArchiveCompression.None:
                WriteTar(output);
                break;
            case ArchiveCompression.Gzip:
                using (var gzip = new GZipStream(output, GzipLevel, leaveOpen: true))
                {
                    WriteTar(gzip);
                }
                break;
            case ArchiveCompression.Xz:
                using (var xz = new XzStoreWriter(output, leaveOpen: true))
                {
                    WriteTar(xz);
                }
                break;
            case ArchiveCompression.Bzip2:
                using (var bzip2 = BZip2Stream.Create(output, SharpCompress.Compressors.CompressionMode.Compress, false, leaveOpen: true, false))
                {
                    WriteTar(bzip2);
                }
                break;
            case ArchiveCompression.Zip:
                WriteZip(output);
                break;
        }
    }

    private IEnumerable<Item> ItemsToWrite() => _items.Where(i => DirectoryEntries || i.Type != TarEntryType.Directory || i.Raw is not null);

    private void WriteTar(Stream output)
    {
        using var writer = new TarWriter(output, Format, leaveOpen: true);
        foreach (var item in ItemsToWrite())
        {
            if (item.Raw is not null)
            {
                writer.WriteEntry(item.Raw());
                continue;
            }
            if (MacMetadata)
            {
                var slash = item.Path.LastIndexOf('/');
                var appleDouble = item.Path[..(slash + 1)] + "._" + item.Path[(slash + 1)..];
                writer.WriteEntry(CreateEntry(new Item(appleDouble, TarEntryType.RegularFile, 0x1A4, item.ModificationTime) { Content = AppleDoubleBytes }, withAttributes: false));
            }
            var entry = CreateEntry(item);
            writer.WriteEntry(entry);
            (entry.DataStream as IDisposable)?.Dispose();
        }
    }

    private TarEntry CreateEntry(Item item, bool withAttributes = true)
    {
        var name = NamePrefix + item.Path + (item.Type == TarEntryType.Directory && Format == TarEntryFormat.V7 ? "/" : string.Empty);
        var type = item.Type == TarEntryType.RegularFile && Format == TarEntryFormat.V7 ? TarEntryType.V7RegularFile : item.Type;
        TarEntry entry = Format switch
        {
            TarEntryFormat.Pax when MacMetadata && withAttributes => new PaxTarEntry(type, name, new Dictionary<string, string>
            {
                ["LIBARCHIVE.xattr.com.apple.provenance"] = "AQIAw3Bsn1mLtUo",
                ["LIBARCHIVE.xattr.com.apple.quarantine"] = "MDA4MzthYmNkZWY7U2FmYXJpOw",
            }),
            TarEntryFormat.Pax => new PaxTarEntry(type, name),
            TarEntryFormat.Gnu => new GnuTarEntry(type, name),
            TarEntryFormat.Ustar => new UstarTarEntry(type, name),
            TarEntryFormat.V7 => new V7TarEntry(type, name),
            _ => throw new ArgumentOutOfRangeException(nameof(Format)),
        };
        entry.Mode = (UnixFileMode)item.Mode;
        entry.ModificationTime = item.ModificationTime;
        entry.Uid = OwnerId;
        entry.Gid = GroupId;
        if (entry is PosixTarEntry posix)
        {
            posix.UserName = OwnerName;
            posix.GroupName = GroupName;
        }
        if (item.LinkName is not null)
        {
            entry.LinkName = item.LinkName;
        }
        if (item.Type == TarEntryType.RegularFile)
        {
            entry.DataStream = item.OpenContent();
        }
        return entry;
    }

    private void WriteZip(Stream output)
    {
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        foreach (var item in ItemsToWrite())
        {
            if (item.Raw is not null || item.Type == TarEntryType.HardLink)
            {
                throw new NotSupportedException($"Zip cannot hold '{item.Path}' ({(item.Raw is not null ? "raw tar entry" : "hard link")}).");
            }
            var fileType = item.Type switch
            {
                TarEntryType.Directory => 0x4000,
                TarEntryType.SymbolicLink => 0xA000,
                TarEntryType.CharacterDevice => 0x2000,
                TarEntryType.BlockDevice => 0x6000,
                TarEntryType.Fifo => 0x1000,
                _ => 0x8000,
            };
            if (MacMetadata && item.Type != TarEntryType.Directory)
            {
                var slash = item.Path.LastIndexOf('/');
                var mac = zip.CreateEntry($"__MACOSX/{item.Path[..(slash + 1)]}._{item.Path[(slash + 1)..]}");
                using var macStream = mac.Open();
                macStream.Write(AppleDoubleBytes);
            }
            var name = NamePrefix + item.Path + (item.Type == TarEntryType.Directory ? "/" : string.Empty);
            var entry = zip.CreateEntry(name, CompressionLevel.Fastest);
            entry.ExternalAttributes = unchecked((fileType | item.Mode) << 16);
            entry.LastWriteTime = item.ModificationTime;
            using var stream = entry.Open();
            if (item.Type == TarEntryType.SymbolicLink)
            {
                stream.Write(Encoding.UTF8.GetBytes(item.LinkName!));
            }
            else if (item.Type == TarEntryType.RegularFile)
            {
                using var content = item.OpenContent();
                content.CopyTo(stream);
            }
        }
    }

    // An AppleDouble header (magic 0x00051607, version 2) with no entries: enough to look like what macOS writes.
    private static readonly byte[] AppleDoubleBytes = [0x00, 0x05, 0x16, 0x07, 0x00, 0x02, 0x00, 0x00, .. new byte[16], 0x00, 0x00];

    private sealed record Item(string Path, TarEntryType Type, int Mode, DateTimeOffset ModificationTime)
    {
        public byte[]? Content { get; init; }
        public long GeneratedLength { get; init; }
        public ulong Seed { get; init; }
        public string? LinkName { get; init; }
        public Func<TarEntry>? Raw { get; init; }

        public Stream OpenContent() => Content is not null
            ? new MemoryStream(Content, writable: false)
            : new FixtureContent(GeneratedLength, Seed, System.IO.Path.GetFileName(Path));
    }
}
