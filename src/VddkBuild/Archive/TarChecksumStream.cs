using VddkBuild.IO;
using System.Text;

namespace VddkBuild.Archive;

/// <summary>
/// System.Formats.Tar does not verify header checksums, so a damaged header would be read as a different name,
/// size or type. This pass-through stream follows the tar block structure as bytes go by (header, data blocks, pax
/// "size" overrides) and fails on the first header whose checksum does not add up.
/// </summary>
/// <remarks>With a <see cref="VerbatimLayerCheck"/>, the same walk also hashes the tar, holds every header to the
/// strict rules an archive must meet to be used as a layer as it is, and records each entry as it read it, so the
/// reader can compare that with System.Formats.Tar's reading.</remarks>
internal sealed class TarChecksumStream(Stream inner, VerbatimLayerCheck? verbatim = null) : ObservingReadStream(inner)
{
    private const int Block = 512;
    private const int MaxPaxCapture = 1024 * 1024;
    private const long MaxMetadataBytes = 16 * 1024 * 1024;

    private readonly byte[] _header = new byte[Block];
    private int _headerFill;
    private long _dataRemaining;       // bytes (padded to blocks) that belong to the current entry's data
    private bool _capturePax;
    private MemoryStream? _pax;
    private long? _nextSize;
    private bool _ended;
    private long _offset;

    // What the verbatim check needs between a metadata record and the entry it describes.
    private char _captureType;
    private long _captureSize;
    private string? _longName;
    private string? _longLink;
    private VerbatimLayerCheck.PaxOverrides? _paxOverrides;
    private bool _pendingMetadata;

    protected override void Observe(ReadOnlySpan<byte> data)
    {
        verbatim?.OnTarBytes(data);
        while (data.Length > 0 && !_ended)
        {
            if (_dataRemaining > 0)
            {
                var n = (int)Math.Min(data.Length, _dataRemaining);
                if (_capturePax && _pax!.Length < MaxPaxCapture)
                {
                    _pax.Write(data[..n]);
                }
                _dataRemaining -= n;
                _offset += n;
                data = data[n..];
                if (_dataRemaining == 0 && _capturePax)
                {
                    OnMetadataComplete(_pax!.ToArray());
                    _capturePax = false;
                    _pax = null;
                }
                continue;
            }
            var take = Math.Min(data.Length, Block - _headerFill);
            data[..take].CopyTo(_header.AsSpan(_headerFill));
            _headerFill += take;
            data = data[take..];
            if (_headerFill == Block)
            {
                _headerFill = 0;
                OnHeader();
                _offset += Block;
            }
        }
        if (_ended && data.Length > 0 && verbatim is { Active: true } && data.IndexOfAnyExcept((byte)0) >= 0)
        {
            verbatim.Refuse("non-zero bytes follow the tar's end-of-archive block");
        }
    }

    private void OnMetadataComplete(byte[] captured)
    {
        // The capture holds the record's blocks; its content is the header's size, without the block padding.
        var content = captured.AsSpan(0, (int)Math.Min(captured.Length, _captureSize));
        if (_captureType is 'x' or 'X')
        {
            _nextSize = PaxSize(content.ToArray()) ?? _nextSize;
        }
        if (verbatim is not { Active: true })
        {
            return;
        }
        if (content.Length >= MaxPaxCapture)
        {
            verbatim.Refuse("a tar metadata record is too large to check");
            return;
        }
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

    private static ReadOnlySpan<byte> UntilNul(ReadOnlySpan<byte> field)
    {
        var nul = field.IndexOf((byte)0);
        return nul < 0 ? field : field[..nul];
    }

    private void OnHeader()
    {
        if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
        {
            _ended = true; // end-of-archive block: what follows is padding
            if (_pendingMetadata)
            {
                verbatim?.Refuse("a tar metadata record describes no entry");
            }
            verbatim?.OnTarEnd();
            return;
        }
        var stored = ParseNumber(_header.AsSpan(148, 8));
        long unsignedSum = 0, signedSum = 0;
        for (var i = 0; i < Block; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : _header[i];
            unsignedSum += b;
            signedSum += (sbyte)b;
        }
        if (stored is null || (stored != unsignedSum && stored != signedSum))
        {
            var name = Encoding.UTF8.GetString(_header.AsSpan(0, 100)).TrimEnd('\0');
            throw new InvalidDataException($"the tar header at byte {_offset} (name field '{EntryPaths.Printable(name)}') has a wrong checksum");
        }

        var type = (char)_header[156];
        var size = ParseNumber(_header.AsSpan(124, 12)) ?? 0;
        if (type is 'x' or 'X' or 'g' or 'L' or 'K' && size > MaxMetadataBytes)
        {
            // TarReader would load it into memory whole; real ones are a few hundred bytes.
            throw new InvalidDataException($"the tar metadata header (type '{type}') at byte {_offset} claims {size} bytes, far more than any name or attribute set needs");
        }
        var capture = type is 'x' or 'X' || (verbatim is { Active: true } && type is 'L' or 'K');
        if (capture)
        {
            _capturePax = true;
            _captureType = type;
            _captureSize = size;
            _pax = new MemoryStream();
        }
        if (type is not ('x' or 'X' or 'g' or 'L' or 'K'))
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
        // Links, devices, fifos and directories carry no data whatever the size field says (POSIX).
        if (type is '1' or '2' or '3' or '4' or '5' or '6')
        {
            size = 0;
        }
        if (type is 'S' or 'M' or 'V' or 'N' or 'D')
        {
            // .NET cannot represent these; saying what they are beats its generic failure.
            var name = Encoding.UTF8.GetString(_header.AsSpan(0, 100)).TrimEnd('\0');
            throw new UnsupportedTarEntryException(name, type switch
            {
                'S' => "GNU sparse file (made with tar --sparse)",
                'M' => "GNU multi-volume continuation",
                'V' => "GNU tape volume header",
                'N' => "GNU rename record",
                _ => "GNU directory dump",
            });
        }
        _dataRemaining = (size + Block - 1) / Block * Block;
        if (_capturePax && _dataRemaining == 0)
        {
            OnMetadataComplete([]); // an empty record: nothing will flow to capture
            _capturePax = false;
            _pax = null;
        }
    }

    /// <summary>The strict rules of <see cref="VerbatimLayerCheck"/> for one header (called with the effective size).</summary>
    private void CheckVerbatimHeader(char type, long size)
    {
        var check = verbatim!;
        var header = _header.AsSpan();
        var posix = header[257..263].SequenceEqual("ustar\0"u8) && header[263..265].SequenceEqual("00"u8);
        var gnu = header[257..265].SequenceEqual("ustar  \0"u8);
        if (!posix && !gnu)
        {
            check.Refuse("the tar has pre-POSIX (v7) headers");
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
            if ((field[0] & 0x80) != 0 || ParseNumber(field) is null)
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
        (100, 8, "mode"), (108, 8, "uid"), (116, 8, "gid"), (124, 12, "size"), (136, 12, "mtime"),
    ];

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

    private static long? PaxSize(byte[] records)
    {
        foreach (var line in Encoding.UTF8.GetString(records).Split('\n'))
        {
            var space = line.IndexOf(' ');
            if (space > 0 && line.AsSpan(space + 1).StartsWith("size=", StringComparison.Ordinal) && long.TryParse(line.AsSpan(space + 6), out var size))
            {
                return size;
            }
        }
        return null;
    }
}

/// <summary>A tar entry type that cannot go into an image; the reader reports it as VDDK1010.</summary>
internal sealed class UnsupportedTarEntryException(string name, string description)
    : IOException($"the entry '{name}' is a {description}")
{
    public string EntryName { get; } = name;
    public string Description { get; } = description;
}
