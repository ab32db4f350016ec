using System.Buffers.Binary;

namespace VddkBuild.Archive;

/// <summary>
/// What System.IO.Compression keeps to itself about each zip entry: the name's bytes, the host that made the entry,
/// the general-purpose flags and the compression method. Read from the central directory, in its order (the order of
/// <see cref="System.IO.Compression.ZipArchive.Entries"/>).
/// </summary>
internal static class ZipCentralDirectory
{
    private const uint EndSignature = 0x06054b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const uint Zip64EndSignature = 0x06064b50;
    private const uint EntrySignature = 0x02014b50;
    private const int MaxCommentLength = 0xFFFF;

    /// <param name="Host">"Version made by" high byte: 0 MS-DOS/Windows FAT, 3 Unix, 10/11 NTFS, 14 VFAT, 19 macOS...</param>
    internal readonly record struct EntryFacts(byte[] NameBytes, byte Host, ushort Flags, ushort Method)
    {
        public bool Encrypted => (Flags & 1) != 0;

        /// <summary>Hosts whose file names use '\' as the folder separator; elsewhere it is an ordinary character.</summary>
        public bool MadeOnDosOrWindows => Host is 0 or 6 or 10 or 11 or 14;
    }

    /// <summary>The entries' facts; throws InvalidDataException when the directory cannot be read.</summary>
    public static List<EntryFacts> Read(FileStream file)
    {
        var tailLength = (int)Math.Min(file.Length, 22 + MaxCommentLength + 20);
        var tail = new byte[tailLength];
        file.Position = file.Length - tailLength;
        file.ReadExactly(tail);
        var end = tail.AsSpan().LastIndexOf("PK\u0005\u0006"u8);
        if (end < 0 || end + 22 > tail.Length)
        {
            throw new InvalidDataException("the zip's end-of-central-directory record is missing");
        }
        long count = BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(end + 10));
        long size = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end + 12));
        long offset = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end + 16));
        if ((count == 0xFFFF || size == 0xFFFFFFFF || offset == 0xFFFFFFFF) && end >= 20
            && BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end - 20)) == Zip64LocatorSignature)
        {
            var zip64End = new byte[56];
            file.Position = (long)BinaryPrimitives.ReadUInt64LittleEndian(tail.AsSpan(end - 20 + 8));
            file.ReadExactly(zip64End);
            if (BinaryPrimitives.ReadUInt32LittleEndian(zip64End) != Zip64EndSignature)
            {
                throw new InvalidDataException("the zip's ZIP64 end-of-central-directory record is missing");
            }
            count = (long)BinaryPrimitives.ReadUInt64LittleEndian(zip64End.AsSpan(32));
            size = (long)BinaryPrimitives.ReadUInt64LittleEndian(zip64End.AsSpan(40));
            offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(zip64End.AsSpan(48));
        }
        if (offset + size > file.Length || size > 256L * 1024 * 1024)
        {
            throw new InvalidDataException("the zip's central directory lies outside the file");
        }
        var directory = new byte[size];
        file.Position = offset;
        file.ReadExactly(directory);
        var entries = new List<EntryFacts>((int)Math.Min(count, 1 << 16));
        var spans = new List<(long Start, long End, int Entry)>((int)Math.Min(count, 1 << 16));
        var at = 0;
        for (long i = 0; i < count; i++)
        {
            if (at + 46 > directory.Length || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(at)) != EntrySignature)
            {
                throw new InvalidDataException($"the zip's central directory entry {i} is damaged");
            }
            var header = directory.AsSpan(at);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(header[28..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(header[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(header[32..]);
            if (at + 46 + nameLength > directory.Length)
            {
                throw new InvalidDataException($"the zip's central directory entry {i} is damaged");
            }
            entries.Add(new EntryFacts(
                header.Slice(46, nameLength).ToArray(),
                header[5],
                BinaryPrimitives.ReadUInt16LittleEndian(header[8..]),
                BinaryPrimitives.ReadUInt16LittleEndian(header[10..])));
            if (LocalData(header, nameLength, extraLength, directory.Length - at) is var (localOffset, compressedSize))
            {
                // A local header (30 bytes before its name) and the compressed data: the least room an entry takes.
                spans.Add((localOffset, localOffset + 30 + compressedSize, (int)i));
            }
            at += 46 + nameLength + extraLength + commentLength;
        }
        CheckNoOverlap(spans, offset, entries);
        return entries;
    }

    /// <summary>
    /// Every entry's local header and data must lie apart from the others' and before the central directory. Zip
    /// bombs make many entries out of the same compressed bytes (pointing several central entries at one local file,
    /// or overlapping them); each reads as valid, and a few kilobytes inflate to gigabytes before a size limit is
    /// reached. No zip writer shares data between entries (unzip refuses it: "overlapped components").
    /// </summary>
    private static void CheckNoOverlap(List<(long Start, long End, int Entry)> spans, long directoryOffset, List<EntryFacts> entries)
    {
        spans.Sort((a, b) => a.Start.CompareTo(b.Start));
        for (var i = 0; i < spans.Count; i++)
        {
            var limit = i + 1 < spans.Count ? spans[i + 1].Start : directoryOffset;
            if (spans[i].End > limit)
            {
                var other = i + 1 < spans.Count
                    ? $"overlaps the entry '{EntryPaths.EscapedBytes(entries[spans[i + 1].Entry].NameBytes)}'"
                    : "runs into the central directory";
                throw new InvalidDataException(
                    $"the zip entry '{EntryPaths.EscapedBytes(entries[spans[i].Entry].NameBytes)}' {other}: entries that share or overlap their compressed data are how zip bombs multiply a few kilobytes into gigabytes, and no zip tool writes them");
            }
        }
    }

    /// <summary>
    /// The local header's offset and the compressed size, from the ZIP64 extra field where the header says so; null
    /// when that field is missing or short (the reader then reports the entry itself).
    /// </summary>
    private static (long LocalOffset, long CompressedSize)? LocalData(ReadOnlySpan<byte> header, int nameLength, int extraLength, int available)
    {
        long compressed = BinaryPrimitives.ReadUInt32LittleEndian(header[20..]);
        long uncompressed = BinaryPrimitives.ReadUInt32LittleEndian(header[24..]);
        long local = BinaryPrimitives.ReadUInt32LittleEndian(header[42..]);
        if (compressed != 0xFFFFFFFF && uncompressed != 0xFFFFFFFF && local != 0xFFFFFFFF)
        {
            return (local, compressed);
        }
        var extra = header.Slice(46 + nameLength, Math.Max(0, Math.Min(extraLength, available - 46 - nameLength)));
        while (extra.Length >= 4)
        {
            var id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            var length = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            var data = extra.Slice(4, Math.Min(length, extra.Length - 4));
            if (id == 0x0001)
            {
                // Only the fields the header marks with 0xFFFFFFFF are here, in this order.
                var field = 0;
                if (uncompressed == 0xFFFFFFFF)
                {
                    field += 8;
                }
                if (compressed == 0xFFFFFFFF)
                {
                    if (data.Length < field + 8)
                    {
                        return null;
                    }
                    compressed = (long)BinaryPrimitives.ReadUInt64LittleEndian(data[field..]);
                    field += 8;
                }
                if (local == 0xFFFFFFFF)
                {
                    if (data.Length < field + 8)
                    {
                        return null;
                    }
                    local = (long)BinaryPrimitives.ReadUInt64LittleEndian(data[field..]);
                }
                return local < 0 || compressed < 0 ? null : (local, compressed);
            }
            extra = extra[Math.Min(extra.Length, 4 + length)..];
        }
        return null;
    }

    /// <summary>The name of a zip compression method, for messages.</summary>
    public static string MethodName(ushort method) => method switch
    {
        0 => "stored",
        1 => "shrunk",
        2 or 3 or 4 or 5 => "reduced",
        6 => "imploded",
        8 => "deflate",
        9 => "deflate64",
        12 => "bzip2",
        14 => "LZMA",
        19 => "IBM LZ77",
        93 => "zstd",
        95 => "xz",
        96 => "JPEG",
        97 => "WavPack",
        98 => "PPMd",
        99 => "WinZip AES encryption",
        _ => $"method {method}",
    };
}
