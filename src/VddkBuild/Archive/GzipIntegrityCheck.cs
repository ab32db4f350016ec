using System.Runtime.CompilerServices;
using VddkBuild.IO;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// .NET's GZipStream checks the trailer of every member it finishes, but it ends quietly where the file is cut off
/// inside the last member and where bytes that are no gzip member follow the last one. This check hashes everything
/// decompressed and then proves that the file ends with the trailer of a complete last member: the trailer covers
/// everything (one member), or the last member, inflated again on its own, gives the length and CRC-32 its trailer
/// records. Only zero bytes may follow it (tape and <c>dd conv=sync</c> padding, which gzip itself accepts). Since
/// GZipStream also stops quietly at bytes that are no member between members, the check also proves that what it
/// read is everything up to that trailer (<see cref="CheckMembersBeforeAsync"/>, <see cref="StoppedAtTrailerAsync"/>).
/// </summary>
internal sealed class GzipIntegrityCheck
{
    private const int TrailerLength = 8;
    private const int MaxZeroPadding = 16 * 1024 * 1024;
    private const int MaxEndIntoZeros = 16;
    private const int EmptyMemberSearch = 64 * 1024; // an empty member is a header and a few bytes

    private readonly string _archivePath;
    private readonly Crc32 _crc = new();
    private long _length;
    private readonly VerbatimLayerCheck? _verbatim;
    private ReadCounter? _compressed;

    public GzipIntegrityCheck(string archivePath, VerbatimLayerCheck? verbatim = null)
    {
        _archivePath = archivePath;
        _verbatim = verbatim;
    }

    /// <summary>Wraps the compressed file the decompressor reads, to know how far it read.</summary>
    public Stream TrackCompressed(Stream compressed) => _compressed = new ReadCounter(compressed);

    /// <summary>Wraps the decompressed stream so every byte read is counted and hashed.</summary>
    public Stream Track(Stream decompressed) => new HashingReadStream(decompressed, this);

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask VerifyAsync(CancellationToken cancellationToken)
    {
        var actualCrc = _crc.GetCurrentHashAsUInt32();
        var actualLength = unchecked((uint)_length);
        _verbatim?.OnTarCrc(actualCrc);
        await using var file = new FileStream(_archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        var dataEnd = await EndOfZeroPaddingAsync(file, cancellationToken).ConfigureAwait(false);
        if (dataEnd < 18)
        {
            throw Corrupt("the file is too short to hold a gzip header and trailer");
        }
        // A trailer may itself end in zero bytes (the high bytes of a small length), so the last member may end up
        // to 7 bytes into what looks like padding; an empty last member (`printf '' | gzip >> file`) has an all-zero
        // trailer after compressed data that itself ends in a zero byte, so it ends up to 16 bytes into it. An all-zero
        // trailer counts only when a member that inflates to nothing ends there.
        var trailer = new byte[TrailerLength + MaxEndIntoZeros];
        var tailStart = Math.Max(0, dataEnd - TrailerLength);
        file.Position = tailStart;
        var tailLength = await file.ReadAtLeastAsync(trailer, trailer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        (long Start, long Inflated, long End)? lastMember = null; // Start -1: one member holds everything
        for (var shift = 0; shift + TrailerLength <= tailLength && shift <= MaxEndIntoZeros; shift++)
        {
            var candidate = trailer.AsSpan(shift, TrailerLength);
            var storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(candidate);
            var storedLength = BinaryPrimitives.ReadUInt32LittleEndian(candidate[4..]);
            var end = tailStart + shift + TrailerLength;
            if (candidate.IndexOfAnyExcept((byte)0) < 0)
            {
                if (_length > 0 && await EmptyMemberEndingAtAsync(file, end, cancellationToken).ConfigureAwait(false) is { } emptyStart)
                {
                    lastMember = (emptyStart, 0, end); // an empty last member
                    break;
                }
                continue;
            }
            if (storedCrc == actualCrc && storedLength == actualLength)
            {
                await CheckOneMemberAsync(file, end, cancellationToken).ConfigureAwait(false);
                lastMember = (-1, _length, end); // one member holds everything
                break;
            }
            // The last member is shorter than everything, which the 32-bit lengths show only below 4 GiB.
            if ((storedLength < actualLength || _length > uint.MaxValue) && await CompleteMemberEndingAtAsync(file, end, storedCrc, storedLength, _length, firstToo: false, cancellationToken).ConfigureAwait(false) is { } member)
            {
                lastMember = (member.Start, member.Inflated, end); // the last of several members
                break;
            }
        }
        if (lastMember is not { } found)
        {
            throw Corrupt($"the file does not end with the trailer of a complete gzip member ({_length} bytes were decompressed): it is truncated or damaged, or other data follows the gzip data");
        }
        if (found.Start >= 0)
        {
            await CheckMembersBeforeAsync(file, found.Start, found.Inflated, cancellationToken).ConfigureAwait(false);
        }
        if (found.End < file.Length)
        {
            // gzip and GNU tar accept the padding, but a strict reader (Go's, which containerd uses) fails on it.
            _verbatim?.Refuse($"{file.Length - found.End} zero bytes follow the gzip data");
        }
    }

    /// <summary>
    /// GZipStream also stops quietly at bytes that are no gzip header between two members: the members before them
    /// then pass for everything, and the last member found at the end was never read. So the members before the last
    /// one (at <paramref name="lastStart"/>, inflating to <paramref name="lastInflated"/>) must inflate on their own
    /// to exactly the rest of what was read. Empty members are stepped over to the member before them.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask CheckMembersBeforeAsync(FileStream file, long lastStart, long lastInflated, CancellationToken cancellationToken)
    {
        var expected = _length - lastInflated;
        while (lastInflated == 0 && lastStart > 0)
        {
            // An empty member adds nothing to count: the member before it must end right where it starts.
            if (lastStart < 18)
            {
                throw JunkBetweenMembers();
            }
            var trailer = new byte[TrailerLength];
            file.Position = lastStart - TrailerLength;
            await file.ReadExactlyAsync(trailer, cancellationToken).ConfigureAwait(false);
            if (trailer.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                lastStart = await EmptyMemberEndingAtAsync(file, lastStart, cancellationToken).ConfigureAwait(false) ?? throw JunkBetweenMembers();
                continue;
            }
            var previous = await CompleteMemberEndingAtAsync(file, lastStart, BinaryPrimitives.ReadUInt32LittleEndian(trailer), BinaryPrimitives.ReadUInt32LittleEndian(trailer.AsSpan(4)), expected, firstToo: true, cancellationToken).ConfigureAwait(false)
                ?? throw JunkBetweenMembers();
            (lastStart, lastInflated) = previous;
            expected -= lastInflated;
        }
        long inflated = 0;
        file.Position = 0;
        try
        {
            await using var gzip = new GZipStream(new VddkBuild.Registry.BoundedReadStream(file, lastStart), CompressionMode.Decompress, leaveOpen: true);
            var buffer = new byte[64 * 1024];
            int read;
            while (inflated <= expected && (read = await gzip.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                inflated += read;
            }
        }
        catch (InvalidDataException)
        {
            inflated = -1;
        }
        if (inflated != expected)
        {
            throw JunkBetweenMembers();
        }
    }

    /// <summary>
    /// The trailer at <paramref name="end"/> records everything decompressed, but GZipStream may have stopped at bytes
    /// that are no gzip member after the real one, ahead of a copy of its trailer or of a member that ends with it
    /// (the archive appended to itself after junk). GZipStream reads a member through its trailer, and stops within
    /// its last read: the member it stopped after ends in that read, with this trailer, before <paramref name="end"/>.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask CheckOneMemberAsync(FileStream file, long end, CancellationToken cancellationToken)
    {
        if (_compressed is not null && !await StoppedAtTrailerAsync(file, 0, _compressed, end, cancellationToken).ConfigureAwait(false))
        {
            throw JunkBetweenMembers();
        }
    }

    /// <summary>
    /// Whether the decompressor that read the file from <paramref name="start"/> through <paramref name="counter"/>
    /// stopped at the trailer ending at <paramref name="end"/>: it read that far, and that trailer's bytes do not
    /// occur earlier within its last read (where the member it stopped after would end).
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> StoppedAtTrailerAsync(FileStream file, long start, ReadCounter counter, long end, CancellationToken cancellationToken)
    {
        var read = start + counter.Total;
        if (read < end)
        {
            return false;
        }
        var from = Math.Max(start, read - counter.Last - TrailerLength);
        if (from >= end - TrailerLength)
        {
            return true;
        }
        var bytes = new byte[end - from];
        var position = file.Position;
        file.Position = from;
        await file.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        file.Position = position;
        return bytes.AsSpan(0, bytes.Length - 1).IndexOf(bytes.AsSpan(bytes.Length - TrailerLength)) < 0;
    }

    private VddkException JunkBetweenMembers() => ArchiveFailures.Corrupt(_archivePath,
        "bytes that are no gzip member follow a gzip member ('gzip -t' reports trailing garbage): what follows them was not read; download the archive again");

    private VddkException Corrupt(string reason) => ArchiveFailures.Corrupt(_archivePath, $"after the last entry, {reason}");

    /// <summary>Where the zero bytes at the end of the file begin (the file's length when there are none).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private async ValueTask<long> EndOfZeroPaddingAsync(FileStream file, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var end = file.Length;
        while (end > 0 && file.Length - end < MaxZeroPadding)
        {
            var start = Math.Max(0, end - buffer.Length);
            file.Position = start;
            var chunk = buffer.AsMemory(0, (int)(end - start));
            await file.ReadExactlyAsync(chunk, cancellationToken).ConfigureAwait(false);
            var lastNonZero = chunk.Span.LastIndexOfAnyExcept((byte)0);
            if (lastNonZero >= 0)
            {
                return start + lastNonZero + 1;
            }
            end = start;
        }
        return end == 0 ? 0 : file.Length; // megabytes of zeros: not padding; the trailer check then fails
    }

    /// <summary>
    /// Where the complete gzip member ending at <paramref name="end"/> with this trailer starts, and what it inflates
    /// to: searches backwards for its header and inflates it alone (null when there is none). The members before it
    /// are checked by <see cref="CheckMembersBeforeAsync"/>.
    /// Every look-alike of a header is tried, however many the last member's data holds (a VDDK may ship .gz files,
    /// stored as they are); a wrong one fails in its first bytes or once it gives more than the trailer records.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    /// <param name="atMost">What the whole file decompressed to: no member can give more.</param>
    /// <param name="firstToo">Whether the member may be the file's first.</param>
    private static async ValueTask<(long Start, long Inflated)?> CompleteMemberEndingAtAsync(FileStream file, long end, uint crc, uint length, long atMost, bool firstToo, CancellationToken cancellationToken)
    {
        var window = new byte[64 * 1024];
        for (var windowEnd = end - 18 + 3; windowEnd > 0; windowEnd -= window.Length - 3)
        {
            var windowStart = Math.Max(0, windowEnd - window.Length);
            file.Position = windowStart;
            var span = window.AsMemory(0, (int)(windowEnd - windowStart));
            await file.ReadExactlyAsync(span, cancellationToken).ConfigureAwait(false);
            for (var i = span.Length - 4; i >= 0; i--)
            {
                var b = span.Span;
                if (b[i] != 0x1f || b[i + 1] != 0x8b || b[i + 2] != 8 || (b[i + 3] & 0xe0) != 0 || (windowStart + i == 0 && !firstToo))
                {
                    continue; // a member header: magic, deflate, reserved flag bits clear; the first member is not the last
                }
                if (await InflatesToAsync(file, windowStart + i, end, crc, length, atMost, cancellationToken).ConfigureAwait(false) is { } inflated)
                {
                    return (windowStart + i, inflated);
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Where an empty member (all-zero trailer) ending exactly at <paramref name="end"/> starts; null when none does.
    /// GZipStream cannot tell: it ends quietly where a trailer is cut short, and zeros read as both. So the member is
    /// parsed here: a header
    /// (with its optional fields), the empty final block zlib writes (fixed: 03 00) or a stored empty one
    /// (01 00 00 ff ff), and eight zero bytes ending at <paramref name="end"/>.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private static async ValueTask<long?> EmptyMemberEndingAtAsync(FileStream file, long end, CancellationToken cancellationToken)
    {
        var start = Math.Max(0, end - EmptyMemberSearch);
        var bytes = new byte[end - start];
        file.Position = start;
        await file.ReadExactlyAsync(bytes, cancellationToken).ConfigureAwait(false);
        for (var s = bytes.Length - 20; s >= 0; s--)
        {
            if (start + s > 0 && EmptyMemberLength(bytes.AsSpan(s)) == bytes.Length - s)
            {
                return start + s;
            }
        }
        return null;
    }

    /// <summary>The length of the empty gzip member at the start of <paramref name="b"/>; -1 when there is none.</summary>
    private static int EmptyMemberLength(ReadOnlySpan<byte> b)
    {
        if (b.Length < 20 || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 || (b[3] & 0xe0) != 0)
        {
            return -1;
        }
        var flags = b[3];
        var p = 10;
        if ((flags & 4) != 0) // FEXTRA
        {
            if (p + 2 > b.Length)
            {
                return -1;
            }
            p += 2 + BinaryPrimitives.ReadUInt16LittleEndian(b[p..]);
        }
        foreach (var flag in (ReadOnlySpan<int>)[8, 16]) // FNAME, FCOMMENT: zero-terminated
        {
            if ((flags & flag) != 0)
            {
                var nul = p < b.Length ? b[p..].IndexOf((byte)0) : -1;
                if (nul < 0)
                {
                    return -1;
                }
                p += nul + 1;
            }
        }
        if ((flags & 2) != 0) // FHCRC
        {
            p += 2;
        }
        if (p > b.Length)
        {
            return -1;
        }
        ReadOnlySpan<byte> block = b[p..].StartsWith((ReadOnlySpan<byte>)[3, 0]) ? [3, 0]
            : b[p..].StartsWith((ReadOnlySpan<byte>)[1, 0, 0, 0xff, 0xff]) ? [1, 0, 0, 0xff, 0xff] : [];
        if (block.IsEmpty)
        {
            return -1;
        }
        p += block.Length;
        return p + TrailerLength <= b.Length && b.Slice(p, TrailerLength).IndexOfAnyExcept((byte)0) < 0 ? p + TrailerLength : -1;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private static async ValueTask<long?> InflatesToAsync(FileStream file, long start, long end, uint crc, uint length, long atMost, CancellationToken cancellationToken)
    {
        file.Position = start;
        var member = new Crc32();
        long inflated = 0;
        ReadCounter counter;
        try
        {
            counter = new ReadCounter(new VddkBuild.Registry.BoundedReadStream(file, end - start));
            await using var gzip = new GZipStream(counter, CompressionMode.Decompress, leaveOpen: true);
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await gzip.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                member.Append(buffer.AsSpan(0, read));
                inflated += read;
                if (inflated > atMost || (atMost <= uint.MaxValue && inflated > length))
                {
                    return null;
                }
            }
        }
        catch (InvalidDataException)
        {
            return null; // not a member header after all, or not one that reaches this trailer
        }
        return unchecked((uint)inflated) == length && member.GetCurrentHashAsUInt32() == crc
            && await StoppedAtTrailerAsync(file, start, counter, end, cancellationToken).ConfigureAwait(false) ? inflated : null;
    }

    /// <summary>Counts what a decompressor read of the compressed bytes, and how much in its last read.</summary>
    private sealed class ReadCounter(Stream inner) : ObservingReadStream(inner)
    {
        public long Total { get; private set; }
        public int Last { get; private set; }

        protected override void Observe(ReadOnlySpan<byte> data)
        {
            if (!data.IsEmpty)
            {
                Total += data.Length;
                Last = data.Length;
            }
        }
    }

    private sealed class HashingReadStream(Stream inner, GzipIntegrityCheck check) : ObservingReadStream(inner)
    {
        protected override void Observe(ReadOnlySpan<byte> data)
        {
            check._crc.Append(data);
            check._length += data.Length;
        }
    }
}
