using System.Buffers.Binary;
using System.IO.Hashing;

namespace VddkBuild.TestSupport.Archives;

/// <summary>
/// Writes a valid .xz stream whose single block holds LZMA2 "uncompressed" chunks (no compression: .NET and
/// SharpCompress have no xz encoder, and tests need xz input, not xz ratios). Readable by xz(1) and any decoder.
/// Layout per the xz file format 1.0.4: stream header, block header (LZMA2 filter), chunks, block padding,
/// CRC-32 check, index, stream footer.
/// </summary>
public sealed class XzStoreWriter : Stream
{
    private const int ChunkSize = 64 * 1024;
    private static readonly byte[] StreamFlags = [0x00, 0x01]; // check type CRC-32

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly byte[] _chunk = new byte[ChunkSize];
    private readonly Crc32 _check = new();
    private int _chunkLength;
    private long _uncompressed;
    private long _compressed;
    private bool _firstChunk = true;
    private bool _finished;

    public XzStoreWriter(Stream output, bool leaveOpen = false)
    {
        _output = output;
        _leaveOpen = leaveOpen;
        _output.Write([0xFD, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00]);
        _output.Write(StreamFlags);
        WriteCrc(_output, StreamFlags);
        _output.Write(BlockHeader);
    }

    // Size byte (12/4 - 1), block flags (one filter, no sizes), filter LZMA2 (0x21), 1 property byte (dictionary
    // size code), padding to 8 bytes; then its CRC-32.
    private static byte[] BlockHeader
    {
        get
        {
            byte[] header = [0x02, 0x00, 0x21, 0x01, 0x08, 0x00, 0x00, 0x00, 0, 0, 0, 0];
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), Crc32.HashToUInt32(header.AsSpan(0, 8)));
            return header;
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _check.Append(buffer);
        _uncompressed += buffer.Length;
        while (buffer.Length > 0)
        {
            var n = Math.Min(buffer.Length, ChunkSize - _chunkLength);
            buffer[..n].CopyTo(_chunk.AsSpan(_chunkLength));
            _chunkLength += n;
            buffer = buffer[n..];
            if (_chunkLength == ChunkSize)
            {
                FlushChunk();
            }
        }
    }

    private void FlushChunk()
    {
        if (_chunkLength == 0)
        {
            return;
        }
        // 0x01: uncompressed chunk with dictionary reset (required first), 0x02: without reset.
        Span<byte> header = [_firstChunk ? (byte)0x01 : (byte)0x02, 0, 0];
        BinaryPrimitives.WriteUInt16BigEndian(header[1..], (ushort)(_chunkLength - 1));
        _output.Write(header);
        _output.Write(_chunk.AsSpan(0, _chunkLength));
        _compressed += header.Length + _chunkLength;
        _chunkLength = 0;
        _firstChunk = false;
    }

    private void Finish()
    {
        if (_finished)
        {
            return;
        }
        _finished = true;
        FlushChunk();
        _output.WriteByte(0x00); // LZMA2 end marker
        _compressed += 1;
        var padding = (int)((4 - (_compressed % 4)) % 4);
        _output.Write(new byte[padding]);
        _output.Write(_check.GetCurrentHash());

        var unpaddedSize = BlockHeader.Length + _compressed + 4;
        using var index = new MemoryStream();
        index.WriteByte(0x00);
        WriteVarint(index, 1);
        WriteVarint(index, (ulong)unpaddedSize);
        WriteVarint(index, (ulong)_uncompressed);
        while (index.Length % 4 != 0)
        {
            index.WriteByte(0);
        }
        var indexBytes = index.ToArray();
        _output.Write(indexBytes);
        WriteCrc(_output, indexBytes);

        Span<byte> footer = stackalloc byte[6];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, (uint)((indexBytes.Length + 4) / 4 - 1));
        StreamFlags.CopyTo(footer[4..]);
        WriteCrc(_output, footer);
        _output.Write(footer);
        _output.Write("YZ"u8);
        _output.Flush();
    }

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        stream.WriteByte((byte)value);
    }

    private static void WriteCrc(Stream stream, ReadOnlySpan<byte> data)
    {
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32.HashToUInt32(data));
        stream.Write(crc);
    }

    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Finish();
            if (!_leaveOpen)
            {
                _output.Dispose();
            }
        }
        base.Dispose(disposing);
    }
}
