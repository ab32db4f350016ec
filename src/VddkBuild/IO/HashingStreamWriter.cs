using System.Buffers;
using System.Security.Cryptography;

namespace VddkBuild.IO;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> that passes what is written straight on to a stream and into a hash, through one
/// reused buffer: a <see cref="System.Text.Json.Utf8JsonWriter"/> on it writes a document of any size with a constant
/// amount of memory, where serializing to a byte array first would hold the whole document (and the doubling buffers
/// it grew through) at once.
/// </summary>
internal sealed class HashingStreamWriter(Stream output, IncrementalHash hash) : IBufferWriter<byte>
{
    private const int MinimumBuffer = 1 << 16;

    private byte[] _buffer = new byte[MinimumBuffer];

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _buffer.Length);
        var data = _buffer.AsSpan(0, count);
        hash.AppendData(data);
        output.Write(data);
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Buffer(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => Buffer(sizeHint);

    /// <summary>The buffer from its start: whatever was handed out before has been advanced past (or dropped).</summary>
    private byte[] Buffer(int sizeHint)
    {
        if (sizeHint > _buffer.Length)
        {
            // One value longer than the buffer (a long string): grown once for it, kept for the rest.
            _buffer = new byte[Math.Max(sizeHint, _buffer.Length * 2)];
        }
        return _buffer;
    }
}
