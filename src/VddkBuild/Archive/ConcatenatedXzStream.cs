using System.Runtime.CompilerServices;
using XZStream = SharpCompress.Compressors.Xz.XZStream;
using VddkBuild.IO;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// An .xz file is one or more xz streams, each followed by optional stream padding (zero bytes, a multiple of four),
/// and xz and <c>tar -J</c> read them as one (<c>cat a.xz b.xz</c>, parallel compressors). SharpCompress's XZStream
/// decodes exactly one stream and stops at its footer; this reads the next one from there.
/// </summary>
internal sealed class ConcatenatedXzStream(Stream file) : ReadOnlyStream
{
    private static readonly byte[] Magic = [0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00];

    private Stream? _current = new XZStream(file);
    private readonly byte[] _padding = new byte[4];

    public override int Read(Span<byte> buffer)
    {
        while (_current is not null && !buffer.IsEmpty)
        {
            var read = _current.Read(buffer);
            if (read > 0)
            {
                return read;
            }
            Next after;
            do
            {
                after = AfterStream(file.ReadAtLeast(_padding, _padding.Length, throwOnEndOfStream: false));
            }
            while (after == Next.Padding);
            _current = after == Next.Stream ? new XZStream(file) : null;
        }
        return 0;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (_current is not null && !buffer.IsEmpty)
        {
            var read = await _current.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read > 0)
            {
                return read;
            }
            Next after;
            do
            {
                after = AfterStream(await file.ReadAtLeastAsync(_padding, _padding.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false));
            }
            while (after == Next.Padding);
            _current = after == Next.Stream ? new XZStream(file) : null;
        }
        return 0;
    }

    private enum Next
    {
        End,
        Padding,
        Stream,
    }

    /// <summary>After a stream, up to four bytes were read: the end, padding, or the start of the next stream (then
    /// the file is set back to it).</summary>
    private Next AfterStream(int read)
    {
        if (read == 0)
        {
            return Next.End;
        }
        if (read == _padding.Length && _padding.AsSpan().IndexOfAnyExcept((byte)0) < 0)
        {
            return Next.Padding;
        }
        if (read < _padding.Length && _padding.AsSpan(0, read).IndexOfAnyExcept((byte)0) < 0)
        {
            throw new InvalidDataException("the xz stream padding is not a multiple of four bytes (the file is truncated or damaged)");
        }
        file.Seek(-read, SeekOrigin.Current);
        var head = new byte[Magic.Length];
        var headLength = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        file.Seek(-headLength, SeekOrigin.Current);
        if (!head.AsSpan(0, headLength).SequenceEqual(Magic))
        {
            throw new InvalidDataException("bytes that are not another xz stream follow the xz data (the file is damaged or has other data appended)");
        }
        return Next.Stream;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            file.Dispose();
        }
        base.Dispose(disposing);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public override async ValueTask DisposeAsync()
    {
        await file.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
