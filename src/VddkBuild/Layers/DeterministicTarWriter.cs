using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using VddkBuild.Threading;

namespace VddkBuild.Layers;

/// <summary>
/// Writes a POSIX (ustar + pax) tar stream whose bytes depend only on the entries given: uid/gid 0, empty owner
/// names, no atime/ctime, and pax extended headers under one fixed name when a field does not fit. System.Formats.Tar
/// names its pax headers <c>PaxHeaders.&lt;pid&gt;</c> and adds atime/ctime, so it cannot give reproducible layers.
/// </summary>
/// <remarks>
/// Header layout (POSIX.1-1988 ustar): name[100] mode[8] uid[8] gid[8] size[12] mtime[12] chksum[8] typeflag[1]
/// linkname[100] magic[6] version[2] uname[32] gname[32] devmajor[8] devminor[8] prefix[155], padded to 512.
/// </remarks>
internal sealed class DeterministicTarWriter
{
    public const int BlockSize = 512;

    /// <summary>The name every pax extended header gets; readers ignore it, and a fixed name keeps output stable.</summary>
    public const string PaxHeaderName = "././@PaxHeader";

    /// <summary>8^11 - 1 = 2^33 - 1: the largest size/mtime the 11 octal digits of a 12-byte field hold (8 GiB - 1, year 2242).</summary>
    internal const long MaxOctal11 = 0x1_FFFF_FFFF;
    private static readonly byte[] ZeroBlock = new byte[BlockSize];

    private readonly Stream _output;
    private bool _finished;

    public DeterministicTarWriter(Stream output) => _output = output;

    /// <summary>Total bytes written so far (headers, content, padding, end blocks).</summary>
    public long Position { get; private set; }

    public ValueTask WriteDirectoryAsync(string name, int mode, long mtime, CancellationToken ct) =>
        WriteHeaderAsync(new TarHeader(name.EndsWith('/') ? name : name + "/", TarEntryType.Directory, mode, 0, mtime, null), ct);

    public ValueTask WriteSymlinkAsync(string name, string target, long mtime, CancellationToken ct) =>
        WriteHeaderAsync(new TarHeader(name, TarEntryType.Symlink, 0x1FF /* 0777, as ln -s makes them */, 0, mtime, target), ct);

    public ValueTask WriteHardlinkAsync(string name, string target, int mode, long mtime, CancellationToken ct) =>
        WriteHeaderAsync(new TarHeader(name, TarEntryType.Hardlink, mode, 0, mtime, target), ct);

    /// <summary>Writes a regular file; <paramref name="content"/> must yield at least <paramref name="size"/> bytes.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask WriteFileAsync(string name, int mode, long mtime, long size, Stream content, Func<long, long, Exception> onShortContent, CancellationToken ct)
    {
        await WriteHeaderAsync(new TarHeader(name, TarEntryType.File, mode, size, mtime, null), ct).ConfigureAwait(false);
        var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
        try
        {
            long remaining = size;
            while (remaining > 0)
            {
                int read = await content.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), ct).ConfigureAwait(false);
                if (read == 0)
                {
                    throw onShortContent(size, size - remaining);
                }
                await WriteRawAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                remaining -= read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        await PadAsync(size, ct).ConfigureAwait(false);
    }

    /// <summary>Writes a regular file from memory.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask WriteFileAsync(string name, int mode, long mtime, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        await WriteHeaderAsync(new TarHeader(name, TarEntryType.File, mode, content.Length, mtime, null), ct).ConfigureAwait(false);
        await WriteRawAsync(content, ct).ConfigureAwait(false);
        await PadAsync(content.Length, ct).ConfigureAwait(false);
    }

    /// <summary>Writes the end-of-archive marker: two zero blocks, nothing after them.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask FinishAsync(CancellationToken ct)
    {
        if (_finished)
        {
            return;
        }
        _finished = true;
        await WriteRawAsync(ZeroBlock, ct).ConfigureAwait(false);
        await WriteRawAsync(ZeroBlock, ct).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask WriteHeaderAsync(TarHeader header, CancellationToken ct)
    {
        if (_finished)
        {
            throw new InvalidOperationException("The tar stream is already finished.");
        }
        var blocks = TarHeaderEncoder.Encode(header);
        await WriteRawAsync(blocks, ct).ConfigureAwait(false);
    }

    private ValueTask PadAsync(long size, CancellationToken ct)
    {
        int padding = (int)((BlockSize - (size % BlockSize)) % BlockSize);
        return padding == 0 ? ValueTask.CompletedTask : WriteRawAsync(ZeroBlock.AsMemory(0, padding), ct);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask WriteRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        await _output.WriteAsync(bytes, ct).ConfigureAwait(false);
        Position += bytes.Length;
    }

    internal enum TarEntryType : byte
    {
        File = (byte)'0',
        Hardlink = (byte)'1',
        Symlink = (byte)'2',
        Directory = (byte)'5',
        PaxExtended = (byte)'x',
    }

    internal readonly record struct TarHeader(string Name, TarEntryType Type, int Mode, long Size, long MTime, string? LinkName);

    /// <summary>Turns one logical entry into its header block(s): an optional pax header + its data, then the ustar header.</summary>
    internal static class TarHeaderEncoder
    {
        public static byte[] Encode(TarHeader header)
        {
            var pax = new List<(string Key, string Value)>();
            byte[] nameBytes = Encoding.UTF8.GetBytes(header.Name);
            byte[] nameField, prefixField;
            if (nameBytes.Length <= 100)
            {
                (nameField, prefixField) = (nameBytes, []);
            }
            else if (TrySplitUstar(nameBytes, out var prefix, out var rest))
            {
                (nameField, prefixField) = (rest, prefix);
            }
            else
            {
                pax.Add(("path", header.Name));
                (nameField, prefixField) = (Truncate(nameBytes, 100), []);
            }

            byte[] linkField = [];
            if (header.LinkName is not null)
            {
                var linkBytes = Encoding.UTF8.GetBytes(header.LinkName);
                if (linkBytes.Length <= 100)
                {
                    linkField = linkBytes;
                }
                else
                {
                    pax.Add(("linkpath", header.LinkName));
                    linkField = Truncate(linkBytes, 100);
                }
            }

            long sizeField = header.Size;
            if (header.Size > MaxOctal11)
            {
                pax.Add(("size", header.Size.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                sizeField = 0;
            }
            long mtimeField = header.MTime;
            if (header.MTime is < 0 or > MaxOctal11)
            {
                pax.Add(("mtime", header.MTime.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                mtimeField = 0;
            }

            var ustar = UstarBlock(nameField, prefixField, header.Type, header.Mode, sizeField, mtimeField, linkField);
            if (pax.Count == 0)
            {
                return ustar;
            }

            pax.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
            var paxData = PaxRecords(pax);
            long paxMtime = Math.Clamp(header.MTime, 0, MaxOctal11);
            var paxHeader = UstarBlock(Encoding.ASCII.GetBytes(PaxHeaderName), [], TarEntryType.PaxExtended, 0x1A4 /* 0644 */, paxData.Length, paxMtime, []);
            int paddedData = (paxData.Length + BlockSize - 1) / BlockSize * BlockSize;
            var result = new byte[BlockSize + paddedData + BlockSize];
            paxHeader.CopyTo(result, 0);
            paxData.CopyTo(result, BlockSize);
            ustar.CopyTo(result, BlockSize + paddedData);
            return result;
        }

        /// <summary>ustar keeps names up to 255 bytes as prefix (155) + '/' + name (100).</summary>
        private static bool TrySplitUstar(byte[] path, out byte[] prefix, out byte[] name)
        {
            // Trailing '/' of a directory belongs to the name part, so never split there.
            int limit = Math.Min(path.Length - 2, 155);
            for (int i = limit; i > 0; i--)
            {
                if (path[i] == (byte)'/' && path.Length - i - 1 <= 100)
                {
                    prefix = path[..i];
                    name = path[(i + 1)..];
                    return true;
                }
            }
            prefix = name = [];
            return false;
        }

        private static byte[] Truncate(byte[] bytes, int max)
        {
            int length = Math.Min(bytes.Length, max);
            while (length > 0 && length < bytes.Length && (bytes[length] & 0xC0) == 0x80)
            {
                length--; // never cut a UTF-8 sequence in half
            }
            return bytes[..length];
        }

        /// <summary>Pax records are "LEN key=value\n" where LEN counts the whole record including its own digits.</summary>
        private static byte[] PaxRecords(List<(string Key, string Value)> records)
        {
            var builder = new MemoryStream();
            foreach (var (key, value) in records)
            {
                int body = Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value) + 3; // ' ' '=' '\n'
                int length = body + 1;
                while (length.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + body != length)
                {
                    length++;
                }
                builder.Write(Encoding.UTF8.GetBytes($"{length} {key}={value}\n"));
            }
            return builder.ToArray();
        }

        private static byte[] UstarBlock(byte[] name, byte[] prefix, TarEntryType type, int mode, long size, long mtime, byte[] linkName)
        {
            var block = new byte[BlockSize];
            name.CopyTo(block, 0);
            Octal(block.AsSpan(100, 8), mode & 0xFFF);
            Octal(block.AsSpan(108, 8), 0);
            Octal(block.AsSpan(116, 8), 0);
            Octal(block.AsSpan(124, 12), size);
            Octal(block.AsSpan(136, 12), mtime);
            block[156] = (byte)type;
            linkName.CopyTo(block, 157);
            "ustar\0"u8.CopyTo(block.AsSpan(257));
            "00"u8.CopyTo(block.AsSpan(263));
            // uname/gname (265, 297) stay empty; devmajor/devminor are zero like GNU tar writes them.
            Octal(block.AsSpan(329, 8), 0);
            Octal(block.AsSpan(337, 8), 0);
            prefix.CopyTo(block, 345);

            block.AsSpan(148, 8).Fill((byte)' ');
            int checksum = 0;
            foreach (var b in block)
            {
                checksum += b;
            }
            Octal(block.AsSpan(148, 7), checksum); // six digits, NUL, and the space already there
            return block;
        }

        /// <summary>Zero-padded octal filling the field, NUL-terminated.</summary>
        /// <remarks>Values that do not fit go to pax records before this is called; cutting off high digits here
        /// would write a different size or time without a word, so it is a bug, not a rounding.</remarks>
        private static void Octal(Span<byte> field, long value)
        {
            long original = value;
            int digits = field.Length - 1;
            field[digits] = 0;
            for (int i = digits - 1; i >= 0; i--)
            {
                field[i] = (byte)('0' + (value & 7));
                value >>= 3;
            }
            if (value != 0)
            {
                throw new InvalidOperationException($"{original} does not fit in a {field.Length}-byte octal tar header field.");
            }
        }
    }
}
