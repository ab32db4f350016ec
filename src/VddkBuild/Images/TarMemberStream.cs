using System.Runtime.CompilerServices;
using VddkBuild.IO;
using VddkBuild.Threading;
namespace VddkBuild.Images;

/// <summary>A read-only window of <c>length</c> bytes of a file starting at <c>offset</c>: one member of a tar.</summary>
internal sealed class TarMemberStream : ReadOnlyStream
{
    private readonly FileStream _file;
    private readonly long _start;
    private readonly long _length;
    private long _position;

    public TarMemberStream(string path, long offset, long length)
    {
        _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        _file.Position = offset;
        _start = offset;
        _length = length;
    }

    public override long Length => _length;
    public override long Position { get => _position; }

    public override int Read(Span<byte> buffer)
    {
        var window = Window(buffer.Length);
        if (window == 0)
        {
            return 0;
        }
        int n = _file.Read(buffer[..window]);
        _position += n;
        return n;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var window = Window(buffer.Length);
        if (window == 0)
        {
            return 0;
        }
        int n = await _file.ReadAsync(buffer[..window], cancellationToken).ConfigureAwait(false);
        _position += n;
        return n;
    }

    private int Window(int requested) => (int)Math.Min(requested, _length - _position);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }
        base.Dispose(disposing);
    }

    public override string ToString() => $"tar member at {_start} ({_length} bytes)";
}
