using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;
using VddkBuild.IO;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// The tar as System.Formats.Tar gets to read it. That reader does not verify header checksums (a damaged header would
/// be read as a different name, size or type), decodes names that are not UTF-8 into U+FFFD, overflows on owner ids
/// of 2^31 and more, splits pax records at newlines although they are length-prefixed, reads GNU sparse files in pax
/// form as ordinary files named <c>GNUSparseFile.&lt;pid&gt;/...</c>, and fails on a tar without its end-of-archive
/// blocks. This stream follows the tar block structure, holds every header (with its pax or GNU long-name record)
/// until it has been checked, and only then hands it on: a bad checksum, a sparse file or a name that is not UTF-8
/// fails here with what it is; owner ids and record values the reader cannot hold, and which nothing downstream
/// uses (the written layer's owners are 0:0), are replaced in its copy; missing end blocks are supplied.
/// </summary>
/// <remarks>With a <see cref="VerbatimLayerCheck"/>, the same walk also hashes the tar as it is in the archive,
/// holds every header to the strict rules an archive must meet to be used as a layer as it is, and records each entry
/// as it read it, so the reader can compare that with System.Formats.Tar's reading.</remarks>
internal sealed class TarChecksumStream(Stream inner, VerbatimLayerCheck? verbatim = null) : ReadOnlyStream
{
    private const int Block = 512;
    private const int MaxPaxCapture = 1024 * 1024;
    private const long MaxMetadataBytes = 16 * 1024 * 1024;
    private const long MaxDotnetSeconds = 253402300799; // 9999-12-31T23:59:59Z, DateTimeOffset's last second

    // An entry's header with the metadata records ('x', 'L', 'K', also 'g') before it, walked but not yet handed on:
    // the reader acts on a record as soon as it has it, so the entry is checked before the reader sees any of it.
    private byte[] _held = new byte[Block];
    private int _heldFill;              // bytes of _held read so far
    private int _heldWant = Block;      // bytes _held needs before it can be handed on; 0 while data passes through
    private int _heldServed = -1;       // bytes of _held handed on; -1 while it is still being read
    private int _headerStart;           // where in _held the header being read starts
    private bool _inRecord;             // _held is being filled with a metadata record's content, not a header
    private long _heldOffset;           // offset of _held[0] in the tar
    private long _dataRemaining;        // bytes (padded to blocks) of the current entry's data still to pass through
    private bool _ended;
    private long _afterEnd;             // bytes handed on after the first end-of-archive block
    private int _supplied;              // zero bytes still to hand on in place of missing end blocks
    private long? _nextSize;
    private char _captureType;          // the metadata record being read: its type and size
    private long _captureSize;

    // Between a metadata record and the entry it describes.
    private byte[]? _paxPath;
    private byte[]? _paxLinkPath;
    private byte[]? _longNameBytes;
    private byte[]? _longLinkBytes;
    private bool _sparse;
    private byte[]? _sparseName;
    private bool _paxRecord;

    // What the verbatim check needs between a metadata record and the entry it describes.
    private string? _longName;
    private string? _longLink;
    private VerbatimLayerCheck.PaxOverrides? _paxOverrides;
    private bool _pendingMetadata;

    private Span<byte> Header => _held.AsSpan(_headerStart, Block);

    /// <summary>
    /// The full name of the entry last handed on, when System.Formats.Tar reads it without its ustar prefix, or null.
    /// That reader drops the prefix field of any entry that follows a pax header, as if a pax header always carried
    /// the path; bsdtar's pax format (and other libarchive writers) put only times there and split a name of 101 to
    /// 255 bytes into prefix and name, as ustar does. Go's reader, GNU tar and libarchive join the two.
    /// </summary>
    internal string? FullNameReaderDrops { get; private set; }

    private long HeaderOffset => _heldOffset + _headerStart;

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            if (TryHandOn(buffer, out var handed))
            {
                return handed;
            }
            if (_heldWant == 0)
            {
                var read = inner.Read(buffer[..PassThroughLimit(buffer.Length)]);
                if (PassedThrough(buffer[..read]))
                {
                    return read;
                }
                continue;
            }
            var want = _heldWant - _heldFill;
            Assembled(inner.ReadAtLeast(_held.AsSpan(_heldFill, want), want, throwOnEndOfStream: false));
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            if (TryHandOn(buffer.Span, out var handed))
            {
                return handed;
            }
            if (_heldWant == 0)
            {
                var read = await inner.ReadAsync(buffer[..PassThroughLimit(buffer.Length)], cancellationToken).ConfigureAwait(false);
                if (PassedThrough(buffer.Span[..read]))
                {
                    return read;
                }
                continue;
            }
            var want = _heldWant - _heldFill;
            Assembled(await inner.ReadAtLeastAsync(_held.AsMemory(_heldFill, want), want, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false));
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Hands on held header bytes, or supplied end blocks; false when there are none.</summary>
    private bool TryHandOn(Span<byte> buffer, out int handed)
    {
        if (_heldServed >= 0)
        {
            handed = Math.Min(buffer.Length, _heldFill - _heldServed);
            _held.AsSpan(_heldServed, handed).CopyTo(buffer);
            _heldServed += handed;
            if (_heldServed == _heldFill)
            {
                // Next: the entry's data, what follows the end, or the next header.
                _heldServed = -1;
                _heldOffset += _heldFill;
                _heldFill = 0;
                _headerStart = 0;
                _heldWant = _ended || _dataRemaining > 0 ? 0 : Block;
            }
            return true;
        }
        if (_supplied > 0)
        {
            handed = Math.Min(buffer.Length, _supplied);
            buffer[..handed].Clear();
            _supplied -= handed;
            _afterEnd += handed;
            return true;
        }
        handed = 0;
        return false;
    }

    private int PassThroughLimit(int length) => _ended ? length : (int)Math.Min(length, _dataRemaining);

    /// <summary>Entry data or what follows the end went by; false when the caller should look again (end blocks supplied).</summary>
    private bool PassedThrough(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            // The end of the stream. After a single end block, the second is supplied (GNU tar only warns about it).
            if (_ended && _afterEnd < Block)
            {
                _supplied = Block - (int)_afterEnd;
                return false;
            }
            return true; // inside an entry's data this is a truncated tar: the reader reports it
        }
        verbatim?.OnTarBytes(data);
        _heldOffset += data.Length;
        if (_ended)
        {
            _afterEnd += data.Length;
            if (verbatim is { Active: true } && data.IndexOfAnyExcept((byte)0) >= 0)
            {
                verbatim.Refuse("non-zero bytes follow the tar's end-of-archive block");
            }
            return true;
        }
        _dataRemaining -= data.Length;
        if (_dataRemaining == 0)
        {
            _heldWant = Block;
        }
        return true;
    }

    /// <summary><paramref name="read"/> more bytes of the held header or record arrived (fewer than wanted: the end).</summary>
    private void Assembled(int read)
    {
        verbatim?.OnTarBytes(_held.AsSpan(_heldFill, read));
        _heldFill += read;
        if (_heldFill < _heldWant)
        {
            if (_heldFill == 0)
            {
                // The tar stops cleanly between two entries without its end-of-archive blocks, as unfinished
                // streaming writers leave it; GNU tar, bsdtar and Python read it. The reader gets the blocks it expects.
                _ended = true;
                _heldWant = 0;
                _supplied = 2 * Block;
                return;
            }
            throw new InvalidDataException(_heldFill == _headerStart
                ? "the tar ends after a metadata record, without the entry it describes (the archive is truncated)"
                : _inRecord
                    ? $"the tar ends inside the metadata record at byte {HeaderOffset} (the archive is truncated)"
                    : $"the tar ends inside the header at byte {HeaderOffset} (the archive is truncated)");
        }
        if (_inRecord)
        {
            _inRecord = false;
            OnMetadataComplete(_held.AsSpan(_headerStart + Block, (int)_captureSize));
            NextHeaderAt(_heldWant);
            return;
        }
        if (OnHeader())
        {
            _heldServed = 0; // an entry (or the end): hand it on with its records
        }
    }

    /// <summary>Reads the header at <paramref name="start"/> of the held bytes next (after a metadata record).</summary>
    private void NextHeaderAt(int start)
    {
        if (start > MaxMetadataBytes + (64 * Block))
        {
            throw new InvalidDataException($"the tar has metadata records of more than {MaxMetadataBytes} bytes before the entry at byte {_heldOffset + start}, far more than any name or attribute set needs");
        }
        _headerStart = start;
        _heldWant = start + Block;
        if (_held.Length < _heldWant)
        {
            Array.Resize(ref _held, Math.Max(_heldWant, _held.Length * 2));
        }
    }

    /// <summary>A pax, GNU long-name or long-link record is complete; <paramref name="content"/> is in the held copy.</summary>
    private void OnMetadataComplete(Span<byte> content)
    {
        if (verbatim is { Active: true })
        {
            if (content.Length >= MaxPaxCapture)
            {
                verbatim.Refuse("a tar metadata record is too large to check");
            }
            else
            {
                switch (_captureType)
                {
                    case 'x':
                        _paxOverrides = verbatim.ParsePax(content);
                        break;
                    case 'L':
                        _longName = verbatim.AsciiOrRefuse(UntilNul(content), "a GNU long name");
                        break;
                    case 'K':
                        _longLink = verbatim.AsciiOrRefuse(UntilNul(content), "a GNU long link target");
                        break;
                }
            }
        }
        switch (_captureType)
        {
            case 'x' or 'X' or 'g':
                OnPaxRecords(content, global: _captureType == 'g');
                _paxRecord |= _captureType == 'x';
                break;
            case 'L':
                _longNameBytes = UntilNul(content).ToArray();
                break;
            case 'K':
                _longLinkBytes = UntilNul(content).ToArray();
                break;
        }
    }

    /// <summary>
    /// Reads pax records by their length prefixes (a value may contain newlines) and edits the held copy where
    /// System.Formats.Tar cannot read a value that is fine: owner ids beyond Int32 become 0, newlines in values
    /// nothing uses become spaces. Malformed records are left for the reader to report.
    /// </summary>
    private void OnPaxRecords(Span<byte> records, bool global)
    {
        var offset = 0;
        while (offset < records.Length)
        {
            if (!TryReadPaxRecord(records[offset..], out var length, out var keyStart, out var valueStart, out var valueLength))
            {
                return;
            }
            var key = Encoding.UTF8.GetString(records.Slice(offset + keyStart, valueStart - keyStart - 1));
            var value = records.Slice(offset + valueStart, valueLength);
            offset += length;
            if (global && key is "path" or "linkpath" or "size")
            {
                // GNU tar and Python's tarfile apply these to every entry that follows (one name for all; data read as
                // headers); libarchive and Go's reader, which container runtimes use, ignore them: two different trees.
                throw new UnsupportedTarEntryException(Encoding.UTF8.GetString(UntilNul(Header[..100])),
                    $"pax global header that sets '{key}' for every entry after it (GNU tar applies it, container runtimes ignore it)");
            }
            if (!global)
            {
                switch (key)
                {
                    case "size" when long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var size):
                        _nextSize = size;
                        break;
                    case "path":
                        _paxPath = value.ToArray();
                        break;
                    case "linkpath":
                        _paxLinkPath = value.ToArray();
                        break;
                    case "GNU.sparse.name":
                        _sparseName = value.ToArray();
                        _sparse = true;
                        break;
                    default:
                        _sparse |= key.StartsWith("GNU.sparse.", StringComparison.Ordinal);
                        break;
                }
            }
            if (key is "mtime" or "atime" or "ctime"
                && decimal.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds)
                && seconds > MaxDotnetSeconds)
            {
                // System.Formats.Tar parses these exactly so and fails past the year 9999. The time is clamped to that
                // in its copy, in the same number of bytes (a value past it has at least as many digits).
                var clamped = MaxDotnetSeconds.ToString(CultureInfo.InvariantCulture);
                value.Fill((byte)'0');
                Encoding.ASCII.GetBytes(clamped, value[^clamped.Length..]);
            }
            else if (key is "uid" or "gid" && !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _)
                && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                value.Fill((byte)'0'); // the same length, so the record stays well-formed
            }
            else if (key is not ("path" or "linkpath" or "GNU.sparse.name"))
            {
                value.Replace((byte)'\n', (byte)' ');
            }
        }
    }

    /// <summary>One "LEN key=value\n" record at the start of <paramref name="records"/>; offsets are relative to it.</summary>
    private static bool TryReadPaxRecord(ReadOnlySpan<byte> records, out int length, out int keyStart, out int valueStart, out int valueLength)
    {
        length = keyStart = valueStart = valueLength = 0;
        var space = records.IndexOf((byte)' ');
        if (space <= 0 || !int.TryParse(records[..space], NumberStyles.None, CultureInfo.InvariantCulture, out length)
            || length <= space + 2 || length > records.Length || records[length - 1] != (byte)'\n')
        {
            return false;
        }
        keyStart = space + 1;
        var equals = records[keyStart..(length - 1)].IndexOf((byte)'=');
        if (equals <= 0)
        {
            return false;
        }
        valueStart = keyStart + equals + 1;
        valueLength = length - 1 - valueStart;
        return true;
    }

    private static ReadOnlySpan<byte> UntilNul(ReadOnlySpan<byte> field)
    {
        var nul = field.IndexOf((byte)0);
        return nul < 0 ? field : field[..nul];
    }

    /// <summary>Checks the header just read; true when it is an entry's (or the end), false when a record follows.</summary>
    private bool OnHeader()
    {
        var header = Header;
        if (header.IndexOfAnyExcept((byte)0) < 0)
        {
            _ended = true; // end-of-archive block: what follows is padding
            if (_pendingMetadata)
            {
                verbatim?.Refuse("a tar metadata record describes no entry");
            }
            verbatim?.OnTarEnd();
            return true;
        }
        var stored = ParseNumber(header.Slice(148, 8));
        long unsignedSum = 0, signedSum = 0;
        for (var i = 0; i < Block; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : header[i];
            unsignedSum += b;
            signedSum += (sbyte)b;
        }
        if (stored is null || (stored != unsignedSum && stored != signedSum))
        {
            var name = Encoding.UTF8.GetString(header[..100]).TrimEnd('\0');
            throw new InvalidDataException($"the tar header at byte {HeaderOffset} (name field '{EntryPaths.Printable(name)}') has a wrong checksum");
        }

        var type = (char)header[156];
        var size = ParseNumber(header.Slice(124, 12)) ?? 0;
        var metadata = type is 'x' or 'X' or 'g' or 'L' or 'K';
        if (metadata && size > MaxMetadataBytes)
        {
            // TarReader would load it into memory whole; real ones are a few hundred bytes.
            throw new InvalidDataException($"the tar metadata header (type '{type}') at byte {HeaderOffset} claims {size} bytes, far more than any name or attribute set needs");
        }
        if (!metadata)
        {
            if (_nextSize is { } paxSize)
            {
                size = paxSize;
            }
            _nextSize = null;
        }
        if (verbatim is { Active: true })
        {
            CheckVerbatimHeader(type, size);
        }
        if (metadata)
        {
            _captureType = type;
            _captureSize = size;
            if (size == 0)
            {
                OnMetadataComplete([]);
                NextHeaderAt(_headerStart + Block);
                return false;
            }
            _inRecord = true;
            _heldWant = _headerStart + Block + (int)((size + Block - 1) / Block * Block);
            if (_held.Length < _heldWant)
            {
                Array.Resize(ref _held, Math.Max(_heldWant, _held.Length * 2));
            }
            return false;
        }

        CheckEntry(type);
        // Links, devices, fifos and directories carry no data whatever the size field says (POSIX).
        if (type is '1' or '2' or '3' or '4' or '5' or '6')
        {
            size = 0;
        }
        _dataRemaining = (size + Block - 1) / Block * Block;
        return true;
    }

    /// <summary>The header of an entry (after its metadata records): what the reader could not represent faithfully.</summary>
    private void CheckEntry(char type)
    {
        var header = Header;
        var posix = header[257..263].SequenceEqual("ustar\0"u8);
        var name = _paxPath ?? _longNameBytes ?? HeaderName(header, posix);
        var prefixDropped = _paxRecord && _paxPath is null && _longNameBytes is null && posix && header[345] != 0;
        var sparse = _sparse;
        var sparseName = _sparseName;
        var link = type is '1' or '2' ? _paxLinkPath ?? _longLinkBytes ?? UntilNul(header.Slice(157, 100)).ToArray() : null;
        (_paxPath, _paxLinkPath, _longNameBytes, _longLinkBytes, _sparse, _sparseName, _paxRecord) = (null, null, null, null, false, null, false);
        FullNameReaderDrops = null;

        if (sparse)
        {
            // GNU tar --sparse --format=posix: the entry's name is GNUSparseFile.<pid>/<name> and its data a map plus
            // the non-zero parts; read as an ordinary file it would be a different file under a different name.
            throw new UnsupportedTarEntryException(Encoding.UTF8.GetString(sparseName ?? name), "GNU sparse file (made with tar --sparse, pax form)");
        }
        if (type is 'S' or 'M' or 'V' or 'N' or 'D')
        {
            // .NET cannot represent these; saying what they are beats its generic failure.
            throw new UnsupportedTarEntryException(Encoding.UTF8.GetString(name), type switch
            {
                'S' => "GNU sparse file (made with tar --sparse)",
                'M' => "GNU multi-volume continuation",
                'V' => "GNU tape volume header",
                'N' => "GNU rename record",
                _ => "GNU directory dump",
            });
        }
        if (!Utf8.IsValid(name) || (link is not null && !Utf8.IsValid(link)))
        {
            throw new UnusableEntryNameException(EntryPaths.EscapedBytes(name),
                (Utf8.IsValid(name) ? $"has a link target ('{EntryPaths.EscapedBytes(link)}') that" : "has a name that")
                + " is not UTF-8 (the bytes that are not ASCII are shown as \\xNN), so the image would hold another name than the archive. VMware's archives use ASCII names only; repack the VDDK with UTF-8 file names (for example convert them with 'convmv -r -f latin1 -t utf8 --notest' before running tar), or use the original archive");
        }
        if (name.AsSpan().Contains((byte)'\n') || (link is not null && link.AsSpan().Contains((byte)'\n')))
        {
            // Only a pax record can carry one; the name check would refuse it (VDDK1007) had the reader not failed first.
            throw new UnusableEntryNameException(EntryPaths.EscapedBytes(name), "has a name or link target with a line break (U+000A), which could hide the real name in logs and write an unexpected path; use the original VDDK archive from VMware/Broadcom");
        }
        foreach (var offset in (ReadOnlySpan<int>)[108, 116, 329, 337])
        {
            // uid, gid, devmajor, devminor: System.Formats.Tar holds them in an Int32 and fails on larger ones.
            // Nothing downstream uses them for an entry that gets this far (devices are refused by type).
            var field = header.Slice(offset, 8);
            if (ParseNumber(field) > int.MaxValue)
            {
                "0000000\0"u8.CopyTo(field);
            }
        }
        if (prefixDropped)
        {
            FullNameReaderDrops = Encoding.UTF8.GetString(name);
        }
    }

    private static byte[] HeaderName(ReadOnlySpan<byte> header, bool posix)
    {
        var name = UntilNul(header[..100]);
        var prefix = posix ? UntilNul(header.Slice(345, 155)) : [];
        return prefix.IsEmpty ? name.ToArray() : [.. prefix, (byte)'/', .. name];
    }

    /// <summary>The strict rules of <see cref="VerbatimLayerCheck"/> for one header (called with the effective size).</summary>
    private void CheckVerbatimHeader(char type, long size)
    {
        var check = verbatim!;
        ReadOnlySpan<byte> header = Header;
        var posix = header[257..263].SequenceEqual("ustar\0"u8) && header[263..265].SequenceEqual("00"u8);
        var gnu = header[257..265].SequenceEqual("ustar  \0"u8);
        if (!posix && !gnu)
        {
            check.Refuse("the tar has pre-POSIX (v7) headers");
            return;
        }
        if (header[500..].IndexOfAnyExcept((byte)0) >= 0)
        {
            // Go's archive/tar (containerd, CRI-O, podman) takes a ustar header with "tar\0" at 508 for star's, whose
            // prefix is 131 bytes followed by times: it would unpack another name than the one checked here. Neither
            // the ustar nor the GNU layout has a field there (GNU's last one ends at 495); tar writers leave it zero.
            check.Refuse("a tar header has non-zero bytes after its last field (offsets 500-511: Go's reader takes 'tar\\0' at 508 for a star header, with another name)");
            return;
        }
        if (type is not ('0' or '5' or '2' or '1' or 'x' or 'L' or 'K'))
        {
            check.Refuse(type == 'g' ? "the tar has a global pax header" : $"the tar has an entry of type '{EntryPaths.Printable(type.ToString())}'");
            return;
        }
        foreach (var (offset, length, what) in NumericFields)
        {
            var field = header.Slice(offset, length);
            if ((field[0] & 0x80) != 0 || !IsOctalAsGoReadsIt(field))
            {
                check.Refuse($"a tar header's {what} is not a plain octal number");
                return;
            }
        }
        if (type is 'x' or 'L' or 'K')
        {
            if ((type == 'x' && _paxOverrides is not null) || (type == 'L' && _longName is not null) || (type == 'K' && _longLink is not null))
            {
                check.Refuse("the tar repeats a metadata record for one entry");
            }
            _pendingMetadata = true;
            return;
        }

        if (ParseNumber(header.Slice(108, 8)) > VerbatimLayerCheck.MaxOwnerId || ParseNumber(header.Slice(116, 8)) > VerbatimLayerCheck.MaxOwnerId)
        {
            check.Refuse($"an owner id is above {VerbatimLayerCheck.MaxOwnerId}");
        }
        if (type is '1' or '2' or '5' && ParseNumber(header.Slice(124, 12)) != 0)
        {
            check.Refuse("a link or directory header has a non-zero size");
        }
        var name = _paxOverrides?.Path ?? _longName;
        if (name is null)
        {
            var shortName = check.AsciiOrRefuse(UntilNul(header[..100]), "a tar name");
            var prefix = posix ? check.AsciiOrRefuse(UntilNul(header.Slice(345, 155)), "a tar name prefix") : "";
            name = string.IsNullOrEmpty(prefix) ? shortName : prefix + "/" + shortName;
        }
        var link = _paxOverrides?.LinkPath ?? _longLink ?? check.AsciiOrRefuse(UntilNul(header.Slice(157, 100)), "a tar link target");
        check.OnHeader(name ?? "", type, type == '0' ? size : 0, link ?? "");
        _paxOverrides = null;
        _longName = null;
        _longLink = null;
        _pendingMetadata = false;
    }

    private static readonly (int Offset, int Length, string What)[] NumericFields =
    [
        (100, 8, "mode"), (108, 8, "uid"), (116, 8, "gid"), (124, 12, "size"), (136, 12, "mtime"), (148, 8, "checksum"),
        // Go's archive/tar parses these on every ustar, pax and GNU header, whatever the type, and fails on garbage;
        // System.Formats.Tar reads them for devices only.
        (329, 8, "device major number"), (337, 8, "device minor number"),
    ];

    /// <summary>
    /// What Go's parser accepts (reader.go parseOctal): spaces and NULs trimmed from both ends, the rest up to a NUL
    /// all octal digits, or nothing (0). Stricter than <see cref="ParseNumber"/>, which stops at the first space.
    /// </summary>
    private static bool IsOctalAsGoReadsIt(ReadOnlySpan<byte> field)
    {
        field = field.Trim(" \0"u8);
        var nul = field.IndexOf((byte)0);
        if (nul >= 0)
        {
            field = field[..nul];
        }
        return field.IndexOfAnyExceptInRange((byte)'0', (byte)'7') < 0;
    }

    private static long? ParseNumber(ReadOnlySpan<byte> field)
    {
        if (field.Length > 0 && (field[0] & 0x80) != 0)
        {
            // GNU base-256: big-endian binary in the remaining bits.
            long binary = field[0] & 0x3F;
            foreach (var b in field[1..])
            {
                binary = (binary << 8) | b;
            }
            return binary;
        }
        long value = 0;
        var any = false;
        foreach (var b in field)
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                value = (value * 8) + (b - '0');
                any = true;
            }
            else if (b is 0 or (byte)' ')
            {
                if (any)
                {
                    break;
                }
            }
            else
            {
                return null;
            }
        }
        return value;
    }
}

/// <summary>A tar entry type that cannot go into an image; the reader reports it as VDDK1010.</summary>
internal sealed class UnsupportedTarEntryException(string name, string description)
    : IOException($"the entry '{name}' is a {description}")
{
    public string EntryName { get; } = name;
    public string Description { get; } = description;
}

/// <summary>An entry name the image cannot hold as the archive has it; the reader reports it as VDDK1007.</summary>
/// <param name="problem">What is wrong and how to fix it, completing "The archive entry 'X' in 'ARCHIVE' ...".</param>
internal sealed class UnusableEntryNameException(string escapedName, string problem) : IOException($"the entry '{escapedName}' {problem}")
{
    public string EscapedName { get; } = escapedName;
    public string Problem { get; } = problem;
}
