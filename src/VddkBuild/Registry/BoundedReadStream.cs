using System.Runtime.CompilerServices;
using VddkBuild.IO;
using VddkBuild.Threading;
namespace VddkBuild.Registry;

/// <summary>Reads the next <c>length</c> bytes of a shared stream (one upload chunk) without closing it.</summary>
internal sealed class BoundedReadStream(Stream inner, long length) : ReadOnlyStream
{
    private readonly long _length = length;
    private long _remaining = length;

    public override long Length => _length;

    public override long Position
    {
        get => _length - _remaining;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        if (_remaining == 0)
        {
            return 0;
        }
        var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _remaining)]);
        return Consume(n);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_remaining == 0)
        {
            return 0;
        }
        var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
        return Consume(n);
    }

    private int Consume(int n)
    {
        if (n == 0)
        {
            throw new EndOfStreamException($"The source ended {_remaining} bytes before the end of an upload chunk.");
        }
        _remaining -= n;
        return n;
    }

}
