using System.Text;
using VddkBuild.Archive;
using VddkBuild.Layers;

namespace VddkBuild.Tests.Archive;

/// <summary>The header walk must find every header where it is, whatever form the size before it took.</summary>
public sealed class TarChecksumStreamTests
{
    private const long Huge = (1L << 33) + 4096; // 8 GiB + 4 KiB: beyond the 11 octal digits of a size field

    [Fact]
    public void A_GNU_base_256_size_over_8_GiB_is_followed_to_the_next_header()
    {
        var first = GnuHeaderWithBinarySize("vmware-vix-disklib-distrib/big", Huge);
        AssertWalkReachesTheHeaderAfter(first, Huge);
    }

    [Fact]
    public void A_pax_size_over_8_GiB_is_followed_to_the_next_header()
    {
        var first = DeterministicTarWriter.TarHeaderEncoder.Encode(new("vmware-vix-disklib-distrib/big", DeterministicTarWriter.TarEntryType.File, 0x1A4, Huge, 0, null));
        Assert.Equal(3 * 512, first.Length); // pax header, its records, the ustar header
        AssertWalkReachesTheHeaderAfter(first, Huge);
    }

    /// <summary>Headers, <paramref name="dataLength"/> bytes of content (never produced), then a header with a bad
    /// checksum: the walk must report that header at its true offset.</summary>
    private static void AssertWalkReachesTheHeaderAfter(byte[] headers, long dataLength)
    {
        var padded = (dataLength + 511) / 512 * 512;
        var damaged = DeterministicTarWriter.TarHeaderEncoder.Encode(new("vmware-vix-disklib-distrib/after", DeterministicTarWriter.TarEntryType.File, 0x1A4, 0, 0, null));
        damaged[0] ^= 1;
        using var walk = new TarChecksumStream(new Segments(headers, padded, damaged));
        var buffer = new byte[1024 * 1024];
        var error = Assert.Throws<InvalidDataException>(() =>
        {
            while (walk.Read(buffer) > 0)
            {
            }
        });
        Assert.Contains($"at byte {headers.Length + padded} ", error.Message);
    }

    private static byte[] GnuHeaderWithBinarySize(string name, long size)
    {
        var block = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(block, 0);
        "0000644\0"u8.CopyTo(block.AsSpan(100));
        "0000000\0"u8.CopyTo(block.AsSpan(108));
        "0000000\0"u8.CopyTo(block.AsSpan(116));
        block[124] = 0x80; // base-256, big-endian in the remaining 11 bytes
        for (var i = 0; i < 8; i++)
        {
            block[135 - i] = (byte)(size >> (8 * i));
        }
        "00000000000\0"u8.CopyTo(block.AsSpan(136));
        block[156] = (byte)'0';
        "ustar  \0"u8.CopyTo(block.AsSpan(257));
        block.AsSpan(148, 8).Fill((byte)' ');
        var sum = block.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0").CopyTo(block, 148);
        return block;
    }

    /// <summary>A header, a stretch of content that is never produced (reads just report it), and a trailer.</summary>
    private sealed class Segments(byte[] head, long virtualLength, byte[] tail) : VddkBuild.IO.ReadOnlyStream
    {
        private long _position;

        public override int Read(Span<byte> buffer)
        {
            if (_position < head.Length)
            {
                var n = Math.Min(buffer.Length, head.Length - (int)_position);
                head.AsSpan((int)_position, n).CopyTo(buffer);
                _position += n;
                return n;
            }
            if (_position < head.Length + virtualLength)
            {
                var n = (int)Math.Min(buffer.Length, head.Length + virtualLength - _position);
                _position += n;
                return n;
            }
            var offset = (int)(_position - head.Length - virtualLength);
            var m = Math.Min(buffer.Length, tail.Length - offset);
            tail.AsSpan(offset, m).CopyTo(buffer);
            _position += m;
            return m;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));
    }
}
