using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Layers;

/// <summary>
/// Writes one gzip member (RFC 1952) around a raw DeflateStream with a header that never varies: no name, no
/// mtime (0), XFL 0, OS 3 (Unix). GZipStream lets zlib choose XFL/OS, which differ between platforms and levels.
/// A layer is one member today; because concatenated members are valid gzip, independent chunks of the tar can later
/// be compressed on several cores by one writer each and appended in order.
/// </summary>
internal sealed class GzipMemberWriter : Stream
{
    private static readonly byte[] Header = [0x1f, 0x8b, 8 /* deflate */, 0 /* flags */, 0, 0, 0, 0 /* mtime */, 0 /* XFL */, 3 /* OS: Unix */];

    private static readonly byte[] EmptyFinalBlock = [0x03, 0x00];

    private readonly Stream _output;
    private readonly DeflateStream _deflate;
    private readonly Crc32 _crc = new();
    private long _length;
    private bool _headerWritten;
    private bool _finished;

    public GzipMemberWriter(Stream output, CompressionLevel level)
    {
        _output = output;
        _deflate = new DeflateStream(output, level, leaveOpen: true);
    }

    /// <summary>A member at an exact zlib level (1 fastest .. 9 smallest; 6 is what <see cref="CompressionLevel.Optimal"/> means).</summary>
    public GzipMemberWriter(Stream output, int zlibLevel)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(zlibLevel, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(zlibLevel, 9);
        _output = output;
        _deflate = new DeflateStream(output, new ZLibCompressionOptions { CompressionLevel = zlibLevel, CompressionStrategy = ZLibCompressionStrategy.Default }, leaveOpen: true);
    }

    /// <summary>Uncompressed bytes written into this member.</summary>
    public long UncompressedLength => _length;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_finished;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureHeader();
        _crc.Append(buffer);
        _length += buffer.Length;
        _deflate.Write(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_headerWritten)
        {
            _headerWritten = true;
            await _output.WriteAsync(Header, cancellationToken).ConfigureAwait(false);
        }
        _crc.Append(buffer.Span);
        _length += buffer.Length;
        await _deflate.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends the deflate stream and writes the trailer (CRC-32 and length mod 2^32, little endian).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask FinishAsync(CancellationToken cancellationToken)
    {
        if (_finished)
        {
            return;
        }
        if (!_headerWritten)
        {
            _headerWritten = true;
            await _output.WriteAsync(Header, cancellationToken).ConfigureAwait(false);
        }
        _finished = true;
        await _deflate.DisposeAsync().ConfigureAwait(false);
        if (_length == 0)
        {
            // DeflateStream emits nothing when nothing was written; a member still needs one final (empty,
            // fixed-Huffman) block, which is what zlib writes for empty input.
            await _output.WriteAsync(EmptyFinalBlock, cancellationToken).ConfigureAwait(false);
        }
        var trailer = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(trailer, _crc.GetCurrentHashAsUInt32());
        BinaryPrimitives.WriteUInt32LittleEndian(trailer.AsSpan(4), unchecked((uint)_length));
        await _output.WriteAsync(trailer, cancellationToken).ConfigureAwait(false);
    }

    public override void Flush() { }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    private void EnsureHeader()
    {
        if (!_headerWritten)
        {
            _headerWritten = true;
            _output.Write(Header);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_finished)
        {
            // Abandoned: release zlib's native state without writing a trailer.
            _finished = true;
            _deflate.Dispose();
        }
        base.Dispose(disposing);
    }
}
