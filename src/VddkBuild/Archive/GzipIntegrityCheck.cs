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
/// records. Only zero bytes may follow it (tape and <c>dd conv=sync</c> padding, which gzip itself accepts).
/// </summary>
internal sealed class GzipIntegrityCheck
{
    private const int TrailerLength = 8;
    private const int MaxZeroPadding = 16 * 1024 * 1024;
    private const int MaxMemberCandidates = 64;

    private readonly string _archivePath;
    private readonly Crc32 _crc = new();
    private long _length;
    private readonly VerbatimLayerCheck? _verbatim;

    public GzipIntegrityCheck(string archivePath, VerbatimLayerCheck? verbatim = null)
    {
        _archivePath = archivePath;
        _verbatim = verbatim;
    }

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
        // to 7 bytes into what looks like padding. An all-zero "trailer" is padding, not an empty member.
        var trailer = new byte[TrailerLength + 7];
        var tailStart = Math.Max(0, dataEnd - TrailerLength);
        file.Position = tailStart;
        var tailLength = await file.ReadAtLeastAsync(trailer, trailer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        (uint Crc, uint Length, long End)? lastMember = null;
        for (var shift = 0; shift + TrailerLength <= tailLength && shift <= 7; shift++)
        {
            var candidate = trailer.AsSpan(shift, TrailerLength);
            if (candidate.IndexOfAnyExcept((byte)0) < 0)
            {
                break;
            }
            var storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(candidate);
            var storedLength = BinaryPrimitives.ReadUInt32LittleEndian(candidate[4..]);
            var end = tailStart + shift + TrailerLength;
            if (storedCrc == actualCrc && storedLength == actualLength)
            {
                lastMember = (storedCrc, storedLength, end); // one member holds everything
                break;
            }
            // The last member is shorter than everything, which the 32-bit lengths show only below 4 GiB.
            if ((storedLength < actualLength || _length > uint.MaxValue) && await IsCompleteLastMemberAsync(file, end, storedCrc, storedLength, _length, cancellationToken).ConfigureAwait(false))
            {
                lastMember = (storedCrc, storedLength, end); // the last of several members
                break;
            }
        }
        if (lastMember is not { } found)
        {
            throw Corrupt($"the file does not end with the trailer of a complete gzip member ({_length} bytes were decompressed): it is truncated or damaged, or other data follows the gzip data");
        }
        if (found.End < file.Length)
        {
            // gzip and GNU tar accept the padding, but a strict reader (Go's, which containerd uses) fails on it.
            _verbatim?.Refuse($"{file.Length - found.End} zero bytes follow the gzip data");
        }
    }

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
    /// Whether a complete gzip member ends at <paramref name="end"/> with this trailer: searches backwards for its
    /// header and inflates it alone. The members before it were checked by GZipStream as it went from one to the next.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    /// <param name="atMost">What the whole file decompressed to: no member can give more.</param>
    private static async ValueTask<bool> IsCompleteLastMemberAsync(FileStream file, long end, uint crc, uint length, long atMost, CancellationToken cancellationToken)
    {
        var window = new byte[64 * 1024];
        var candidates = 0;
        for (var windowEnd = end - 18 + 3; windowEnd > 0 && candidates < MaxMemberCandidates; windowEnd -= window.Length - 3)
        {
            var windowStart = Math.Max(0, windowEnd - window.Length);
            file.Position = windowStart;
            var span = window.AsMemory(0, (int)(windowEnd - windowStart));
            await file.ReadExactlyAsync(span, cancellationToken).ConfigureAwait(false);
            for (var i = span.Length - 4; i >= 0 && candidates < MaxMemberCandidates; i--)
            {
                var b = span.Span;
                if (b[i] != 0x1f || b[i + 1] != 0x8b || b[i + 2] != 8 || (b[i + 3] & 0xe0) != 0 || windowStart + i == 0)
                {
                    continue; // a member header: magic, deflate, reserved flag bits clear; the first member is not the last
                }
                candidates++;
                if (await InflatesToAsync(file, windowStart + i, end, crc, length, atMost, cancellationToken).ConfigureAwait(false))
                {
                    return true;
                }
            }
        }
        return false;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> InflatesToAsync(FileStream file, long start, long end, uint crc, uint length, long atMost, CancellationToken cancellationToken)
    {
        file.Position = start;
        var member = new Crc32();
        long inflated = 0;
        try
        {
            await using var gzip = new GZipStream(new VddkBuild.Registry.BoundedReadStream(file, end - start), CompressionMode.Decompress, leaveOpen: true);
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await gzip.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                member.Append(buffer.AsSpan(0, read));
                inflated += read;
                if (inflated > atMost)
                {
                    return false;
                }
            }
        }
        catch (InvalidDataException)
        {
            return false; // not a member header after all, or not one that reaches this trailer
        }
        return unchecked((uint)inflated) == length && member.GetCurrentHashAsUInt32() == crc;
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
