using System.Runtime.CompilerServices;
using VddkBuild.IO;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// Members of a zip through System.IO.Compression, which exposes each entry's external attributes: zips made on
/// Unix (Info-ZIP, libarchive, Python) keep the st_mode there, including S_IFLNK for symlinks whose content is the
/// link target. Zips made on Windows carry no mode; files then get 0644 and directories 0755. Zip has no hard links
/// and no devices. Each entry's CRC-32 is checked, since the decoder does not.
/// </summary>
internal sealed class ZipEntrySource : IArchiveEntrySource
{
    private const int FileTypeMask = 0xF000;
    private const int MaxSymlinkTargetBytes = 4096;

    private readonly FileStream _file;
    private readonly ZipArchive _zip;
    private int _next;
    private CrcCheckingStream? _open;
    private long _openLength;

    public ZipEntrySource(FileStream file)
    {
        _file = file;
        _zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<ArchiveSourceEntry?> NextAsync(CancellationToken cancellationToken)
    {
        await FinishOpenEntryAsync(cancellationToken).ConfigureAwait(false);
        if (_next >= _zip.Entries.Count)
        {
            return null;
        }
        var entry = _zip.Entries[_next++];
        var unixMode = (entry.ExternalAttributes >> 16) & 0xFFFF;
        var name = entry.FullName.Replace('\\', '/');
        var isDirectoryName = name.EndsWith('/');
        var mtime = new DateTimeOffset(DateTime.SpecifyKind(entry.LastWriteTime.UtcDateTime, DateTimeKind.Utc), TimeSpan.Zero);

        var (type, description) = (unixMode & FileTypeMask) switch
        {
            0 => isDirectoryName ? (SourceEntryType.Directory, "directory") : (SourceEntryType.File, "regular file"),
            0x4000 => (SourceEntryType.Directory, "directory"),
            0x8000 => (SourceEntryType.File, "regular file"),
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
