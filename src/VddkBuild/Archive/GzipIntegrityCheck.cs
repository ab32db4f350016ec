using System.Runtime.CompilerServices;
using VddkBuild.IO;
using System.Buffers.Binary;
using System.IO.Hashing;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// .NET's GZipStream neither checks the CRC-32 nor the length in a gzip trailer, so a download damaged inside a
/// stored block or cut off at the trailer would pass unnoticed. This check hashes everything decompressed and
/// compares it with the trailer at the end of the file.
/// </summary>
internal sealed class GzipIntegrityCheck
{
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
        await using var file = new FileStream(_archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
        if (file.Length < 18)
        {
            throw Corrupt("the file is too short to hold a gzip header and trailer");
        }
        var trailer = new byte[8];
        file.Seek(-8, SeekOrigin.End);
        await file.ReadExactlyAsync(trailer, cancellationToken).ConfigureAwait(false);
        var storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        var storedLength = BinaryPrimitives.ReadUInt32LittleEndian(trailer.AsSpan(4));
        var actualCrc = _crc.GetCurrentHashAsUInt32();
        var actualLength = unchecked((uint)_length);
        _verbatim?.OnTarCrc(actualCrc);
        if (storedCrc == actualCrc && storedLength == actualLength)
        {
            return;
        }
        // A multi-member gzip (e.g. from pigz or concatenated files) ends with the last member's trailer, which only
        // covers that member: its length is then smaller than the total. Only a single member can be checked as a whole.
        if (storedLength != actualLength && await HasSecondMemberAsync(file, cancellationToken).ConfigureAwait(false))
        {
            return;
        }
        throw Corrupt(storedLength != actualLength
            ? $"the gzip trailer records {storedLength} uncompressed bytes (mod 2^32) but {actualLength} were decompressed: the file is truncated or damaged"
            : $"the gzip trailer's CRC-32 {storedCrc:x8} does not match the decompressed data ({actualCrc:x8}): the file is damaged");
    }

    private VddkException Corrupt(string reason) => ArchiveFailures.Corrupt(_archivePath, $"after the last entry, {reason}");

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private static async ValueTask<bool> HasSecondMemberAsync(FileStream file, CancellationToken cancellationToken)
    {
        file.Seek(1, SeekOrigin.Begin);
        var buffer = new byte[1024 * 1024];
        var carry = 0;
        while (true)
        {
            var read = await file.ReadAsync(buffer.AsMemory(carry), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return false;
            }
            var span = buffer.AsSpan(0, carry + read);
            // A member header: magic, deflate method, flags with the reserved bits clear.
            for (var i = span.IndexOf((byte)0x1f); i >= 0 && i + 3 < span.Length; )
            {
                if (span[i + 1] == 0x8b && span[i + 2] == 8 && (span[i + 3] & 0xe0) == 0)
                {
                    return true;
                }
                var next = span[(i + 1)..].IndexOf((byte)0x1f);
                i = next < 0 ? -1 : i + 1 + next;
            }
            carry = Math.Min(3, span.Length);
            span[^carry..].CopyTo(buffer);
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
