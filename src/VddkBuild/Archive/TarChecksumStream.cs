using VddkBuild.IO;
using System.Text;

namespace VddkBuild.Archive;

/// <summary>
/// System.Formats.Tar does not verify header checksums, so a damaged header would be read as a different name,
/// size or type. This pass-through stream follows the tar block structure as bytes go by (header, data blocks, pax
/// "size" overrides) and fails on the first header whose checksum does not add up.
/// </summary>
internal sealed class TarChecksumStream(Stream inner) : ObservingReadStream(inner)
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

    protected override void Observe(ReadOnlySpan<byte> data)
    {
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
                    _nextSize = PaxSize(_pax!.ToArray()) ?? _nextSize;
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
    }

    private void OnHeader()
    {
        if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
        {
            _ended = true; // end-of-archive block: what follows is padding
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
        if (type is 'x' or 'X')
        {
            _capturePax = true;
            _pax = new MemoryStream();
        }
        else if (type is not ('g' or 'L' or 'K'))
        {
            if (_nextSize is { } paxSize)
            {
                size = paxSize;
            }
            _nextSize = null;
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
