using System.Runtime.CompilerServices;
using VddkBuild.IO;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using System.Text.Unicode;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// Members of a zip through System.IO.Compression, which exposes each entry's external attributes: zips made on
/// Unix (Info-ZIP, libarchive, Python) keep the st_mode there, including S_IFLNK for symlinks whose content is the
/// link target. Zips made on Windows carry no mode; files then get 0644 and directories 0755. Zip has no hard links
/// and no devices. Each entry's CRC-32 is checked, since the decoder does not.
/// </summary>
/// <remarks>
/// <para>Names are read from their bytes as UTF-8, with or without the zip's UTF-8 flag: the zip specification says
/// CP437 without it, but Info-ZIP and most Unix tools store the file system's bytes (UTF-8 today) without setting
/// it, and a CP437 reading would turn every non-ASCII name into another one. A name whose bytes are not UTF-8 is
/// refused (VDDK1007); VMware's names are ASCII, where all these readings agree.</para>
/// <para>'' separates folders only in entries made on MS-DOS, OS/2 or Windows (host 0, 6, 10, 11 as Info-ZIP
/// writes NTFS, 14); on Unix and every other host it is an ordinary character of the name, as unzip keeps it.</para>
/// <para>Only stored and deflate(64) entries without encryption can be read; others are refused as a format not
/// supported (VDDK1002), naming the method.</para>
/// </remarks>
internal sealed class ZipEntrySource : IArchiveEntrySource
{
    private const int FileTypeMask = 0xF000;
    private const int MaxSymlinkTargetBytes = 4096;

    private readonly FileStream _file;
    private readonly ZipArchive _zip;
    private readonly List<ZipCentralDirectory.EntryFacts> _facts;
    private int _next;
    private CrcCheckingStream? _open;
    private long _openLength;

    public ZipEntrySource(FileStream file)
    {
        _file = file;
        _facts = ZipCentralDirectory.Read(file);
        file.Position = 0;
        _zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        if (_zip.Entries.Count != _facts.Count)
        {
            throw new InvalidDataException($"the zip's central directory lists {_facts.Count} entries, but {_zip.Entries.Count} were read");
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<ArchiveSourceEntry?> NextAsync(CancellationToken cancellationToken)
    {
        await FinishOpenEntryAsync(cancellationToken).ConfigureAwait(false);
        if (_next >= _zip.Entries.Count)
        {
            return null;
        }
        var facts = _facts[_next];
        var entry = _zip.Entries[_next++];
        if (!Utf8.IsValid(facts.NameBytes))
        {
            throw new UnusableEntryNameException(EntryPaths.EscapedBytes(facts.NameBytes),
                "has a name that is not UTF-8 (the bytes that are not ASCII are shown as \\xNN), so the image would hold another name than the archive. VMware's archives use ASCII names only; repack the VDDK with UTF-8 file names (on Linux: zip -r -y from a tree with UTF-8 names; 'convmv -r -f latin1 -t utf8 --notest' converts them), or use the original .tar.gz");
        }
        var storedName = Encoding.UTF8.GetString(facts.NameBytes);
        if (facts.Encrypted || entry.IsEncrypted)
        {
            throw new UnsupportedZipEntryException(storedName, "is encrypted (the zip was made with a password)");
        }
        if (facts.Method is not (0 or 8 or 9))
        {
            throw new UnsupportedZipEntryException(storedName, $"is compressed with {ZipCentralDirectory.MethodName(facts.Method)}");
        }
        var unixMode = (entry.ExternalAttributes >> 16) & 0xFFFF;
        var name = facts.MadeOnDosOrWindows ? storedName.Replace('\\', '/') : storedName;
        var isDirectoryName = name.EndsWith('/');
        var mtime = new DateTimeOffset(DateTime.SpecifyKind(entry.LastWriteTime.UtcDateTime, DateTimeKind.Utc), TimeSpan.Zero);

        var (type, description) = (unixMode & FileTypeMask) switch
        {
            0 => isDirectoryName ? (SourceEntryType.Directory, "directory") : (SourceEntryType.File, "regular file"),
            0x4000 => (SourceEntryType.Directory, "directory"),
            // A name ending in '/' is a directory to unzip, bsdtar and Python's zipfile, whatever the mode says.
            0x8000 => isDirectoryName ? (SourceEntryType.Directory, "directory") : (SourceEntryType.File, "regular file"),
            0xA000 => (SourceEntryType.Symlink, "symbolic link"),
            0x2000 => (SourceEntryType.CharacterDevice, "character device"),
            0x6000 => (SourceEntryType.BlockDevice, "block device"),
            0x1000 => (SourceEntryType.Fifo, "FIFO (named pipe)"),
            0xC000 => (SourceEntryType.Unsupported, "socket"),
            var other => (SourceEntryType.Unsupported, $"zip entry with file type 0x{other:x4}"),
        };
        var mode = (unixMode & FileTypeMask) == 0
            ? (type == SourceEntryType.Directory ? 0x1ED /* 0755 */ : 0x1A4 /* 0644 */)
            : unixMode & 0xFFF;

        string? linkTarget = null;
        Stream? content = null;
        if (type == SourceEntryType.Symlink)
        {
            if (entry.Length > MaxSymlinkTargetBytes)
            {
                throw new InvalidDataException($"the symlink entry '{name}' claims a {entry.Length}-byte target");
            }
            await using var stream = new CrcCheckingStream(entry.Open(), entry.Crc32, name);
            using var memory = new MemoryStream();
            await stream.CopyToAsync(memory, cancellationToken).ConfigureAwait(false);
            linkTarget = Encoding.UTF8.GetString(memory.ToArray());
        }
        else if (type == SourceEntryType.File)
        {
            _open = new CrcCheckingStream(entry.Open(), entry.Crc32, name);
            _openLength = entry.Length;
            content = _open;
        }

        return new ArchiveSourceEntry(
            name,
            type,
            description,
            mode,
            mtime,
            type == SourceEntryType.File ? entry.Length : 0,
            linkTarget,
            0,
            content);
    }

    public ValueTask CompleteAsync(CancellationToken cancellationToken) => FinishOpenEntryAsync(cancellationToken);

    /// <summary>
    /// Reads the previous entry to its real end (the reader stops at the declared length, and dropped entries are
    /// not read at all), where the CRC-32 is compared; more data than declared means a forged or damaged size.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask FinishOpenEntryAsync(CancellationToken cancellationToken)
    {
        if (_open is null)
        {
            return;
        }
        var buffer = new byte[64 * 1024];
        while (await _open.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0)
        {
            if (_open.BytesRead > _openLength)
            {
                break; // a zip bomb may hide far more data behind a small recorded size; no need to inflate it all
            }
        }
        var (read, declared) = (_open.BytesRead, _openLength);
        await _open.DisposeAsync().ConfigureAwait(false);
        _open = null;
        if (read != declared)
        {
            throw new InvalidDataException(read > declared
                ? $"a zip entry holds more than the {declared} bytes it records"
                : $"a zip entry holds {read} bytes but records {declared}");
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask DisposeAsync()
    {
        if (_open is not null)
        {
            await _open.DisposeAsync().ConfigureAwait(false);
        }
        _zip.Dispose();
        await _file.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Compares the entry's CRC-32 with the central directory's once the content has been read to its end.</summary>
    private sealed class CrcCheckingStream(Stream inner, uint expectedCrc, string name) : ReadOnlyStream
    {
        private readonly Crc32 _crc = new();
        private bool _checked;

        public long BytesRead { get; private set; }

        public override int Read(Span<byte> buffer) => Account(buffer, inner.Read(buffer));

        [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            return Account(buffer.Span, read);
        }

        private int Account(Span<byte> buffer, int read)
        {
            if (read > 0)
            {
                BytesRead += read;
                _crc.Append(buffer[..read]);
            }
            else if (buffer.Length > 0 && !_checked)
            {
                _checked = true;
                var actual = _crc.GetCurrentHashAsUInt32();
                if (actual != expectedCrc)
                {
                    throw new InvalidDataException($"the CRC-32 of zip entry '{name}' is {actual:x8}, the archive records {expectedCrc:x8}");
                }
            }
            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

/// <summary>A zip entry stored in a way that cannot be read (method, encryption); the reader reports it as VDDK1002.</summary>
internal sealed class UnsupportedZipEntryException(string name, string problem) : IOException($"the zip entry '{name}' {problem}")
{
    public string EntryName { get; } = name;
    public string Problem { get; } = problem;
}
