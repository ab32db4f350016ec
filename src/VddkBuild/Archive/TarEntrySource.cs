using System.Formats.Tar;
using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// Members of a tar stream (plain or already decompressed) through System.Formats.Tar, which understands pax
/// (including long names and link targets), GNU long names/links ('L'/'K'), the ustar prefix field and v7 headers.
/// Global pax headers carry no file and are skipped.
/// </summary>
internal sealed class TarEntrySource : IArchiveEntrySource
{
    private const long MaxTrailingBytes = 4 * 1024 * 1024;
    private readonly TarChecksumStream _tarStream;
    private readonly TarReader _reader;
    private readonly Func<CancellationToken, ValueTask>? _onComplete;
    private readonly VerbatimLayerCheck? _verbatim;

    public TarEntrySource(Stream tarStream, Func<CancellationToken, ValueTask>? onComplete, VerbatimLayerCheck? verbatim = null)
    {
        _verbatim = verbatim;
        _tarStream = new TarChecksumStream(tarStream, verbatim);
        _reader = new TarReader(_tarStream, leaveOpen: true);
        _onComplete = onComplete;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<ArchiveSourceEntry?> NextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var entry = await _reader.GetNextEntryAsync(copyData: false, cancellationToken).ConfigureAwait(false);
            if (entry is null)
            {
                return null;
            }
            if (entry.EntryType == TarEntryType.GlobalExtendedAttributes)
            {
                continue;
            }
            var (type, description) = Classify(entry);
            var name = _tarStream.FullNameReaderDrops ?? entry.Name;
            // v7 archives mark directories only by a trailing slash on a "regular file".
            if (type == SourceEntryType.File && name.EndsWith('/'))
            {
                if (entry.Length > 0)
                {
                    // With data, readers part ways: GNU tar makes a directory and skips the data, bsdtar fails, Go and
                    // Python make a file (Go a directory for type '\0', then reads the data as the next header).
                    throw new UnsupportedTarEntryException(name, "regular file whose name ends in '/' and that has data (GNU tar unpacks it as a directory, other readers as a file or not at all)");
                }
                type = SourceEntryType.Directory;
            }
            return new ArchiveSourceEntry(
                name,
                type,
                description,
                (int)entry.Mode & 0xFFF,
                entry.ModificationTime,
                type == SourceEntryType.File ? entry.Length : 0,
                type is SourceEntryType.Symlink or SourceEntryType.Hardlink ? entry.LinkName : null,
                CountMacAttributes(entry),
                type == SourceEntryType.File ? entry.DataStream ?? Stream.Null : null);
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        // Read what follows the end-of-archive blocks (record padding, usually under 10 KiB) so that a compressed
        // stream reaches its end and its trailer can be checked. Megabytes of it are no tar padding but a way to
        // burn CPU; then the trailer check is skipped rather than inflating it all.
        var buffer = new byte[64 * 1024];
        long trailing = 0;
        int read;
        while ((read = await _tarStream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            trailing += read;
            if (trailing > MaxTrailingBytes)
            {
                _verbatim?.Refuse("megabytes of data follow the tar's end-of-archive block");
                return;
            }
        }
        if (_onComplete is not null)
        {
            await _onComplete(cancellationToken).ConfigureAwait(false);
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask DisposeAsync()
    {
        await _reader.DisposeAsync().ConfigureAwait(false);
        await _tarStream.DisposeAsync().ConfigureAwait(false);
    }

    private static (SourceEntryType, string) Classify(TarEntry entry) => entry.EntryType switch
    {
        TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile => (SourceEntryType.File, "regular file"),
        TarEntryType.Directory => (SourceEntryType.Directory, "directory"),
        TarEntryType.SymbolicLink => (SourceEntryType.Symlink, "symbolic link"),
        TarEntryType.HardLink => (SourceEntryType.Hardlink, "hard link"),
        TarEntryType.CharacterDevice => (SourceEntryType.CharacterDevice, "character device"),
        TarEntryType.BlockDevice => (SourceEntryType.BlockDevice, "block device"),
        TarEntryType.Fifo => (SourceEntryType.Fifo, "FIFO (named pipe)"),
        TarEntryType.SparseFile => (SourceEntryType.Unsupported, "GNU sparse file"),
        TarEntryType.MultiVolume => (SourceEntryType.Unsupported, "GNU multi-volume continuation"),
        TarEntryType.DirectoryList => (SourceEntryType.Unsupported, "GNU directory dump"),
        TarEntryType.RenamedOrSymlinked => (SourceEntryType.Unsupported, "GNU rename record"),
        TarEntryType.TapeVolume => (SourceEntryType.Unsupported, "GNU tape volume header"),
        _ => (SourceEntryType.Unsupported, $"tar type '{(char)entry.EntryType}'"),
    };

    private static int CountMacAttributes(TarEntry entry)
    {
        if (entry is not PaxTarEntry pax)
        {
            return 0;
        }
        var count = 0;
        foreach (var key in pax.ExtendedAttributes.Keys)
        {
            if (MacMetadata.IsAttributeRecord(key))
            {
                count++;
            }
        }
        return count;
    }
}
