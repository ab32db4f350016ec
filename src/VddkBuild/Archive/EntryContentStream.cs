using System.Buffers;
using System.Runtime.CompilerServices;
using VddkBuild.IO;
using SharpCompress.Common;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// The stream a sink gets for a file: exactly the entry's length, read-only, cancellable between reads. Content
/// that ends early, and any decoder failure while reading, become VDDK1003 naming the entry, so a sink never sees a
/// bare decompression exception. Whatever the sink leaves unread is drained afterwards.
/// </summary>
internal sealed class EntryContentStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly string _archivePath;
    private readonly string _entryName;
    private readonly byte[] _head;
    private int _headLength;
    private long _remaining;

    /// <param name="headBytes">How many of the first bytes to keep in <see cref="Head"/>, whoever reads them (the sink or the drain).</param>
    public EntryContentStream(Stream inner, long length, string archivePath, string entryName, int headBytes = 0)
    {
        _inner = inner;
        _head = headBytes == 0 ? [] : new byte[headBytes];
        _remaining = length;
        Length = length;
        _archivePath = archivePath;
        _entryName = entryName;
    }

    public override long Length { get; }

    /// <summary>The first bytes of the content read so far (up to the headBytes asked for).</summary>
    public ReadOnlySpan<byte> Head => _head.AsSpan(0, _headLength);
    public override long Position { get => Length - _remaining; }

    public override int Read(Span<byte> buffer)
    {
        if (_remaining == 0 || buffer.IsEmpty)
        {
            return 0;
        }
        var slice = buffer[..(int)Math.Min(buffer.Length, _remaining)];
        int read;
        try
        {
            read = _inner.Read(slice);
        }
        catch (Exception ex) when (ArchiveFailures.IsDamage(ex))
        {
            throw ArchiveFailures.Corrupt(_archivePath, $"reading the content of '{_entryName}' failed: {ex.Message}", ex);
        }
        KeepHead(slice[..read]);
        return Account(read);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_remaining == 0 || buffer.IsEmpty)
        {
            return 0;
        }
        var slice = buffer[..(int)Math.Min(buffer.Length, _remaining)];
        int read;
        try
        {
            read = await _inner.ReadAsync(slice, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ArchiveFailures.IsDamage(ex))
        {
            throw ArchiveFailures.Corrupt(_archivePath, $"reading the content of '{_entryName}' failed: {ex.Message}", ex);
        }
        KeepHead(slice.Span[..read]);
        return Account(read);
    }

    private void KeepHead(ReadOnlySpan<byte> read)
    {
        var take = Math.Min(read.Length, _head.Length - _headLength);
        if (take > 0)
        {
            read[..take].CopyTo(_head.AsSpan(_headLength));
            _headLength += take;
        }
    }

    private int Account(int read)
    {
        if (read == 0)
        {
            throw ArchiveFailures.Corrupt(_archivePath, $"the content of '{_entryName}' ends {_remaining} bytes before the {Length} bytes its header announces (the archive is truncated)");
        }
        _remaining -= read;
        return read;
    }

    /// <summary>Reads and discards what the sink did not read, so the next entry starts at the right place.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask DrainAsync(CancellationToken cancellationToken)
    {
        if (_remaining == 0)
        {
            return;
        }
        // Pooled and below the large-object threshold: a new large array per entry would trigger full collections
        // of the whole heap of the build process the task runs in.
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(_remaining, 64 * 1024));
        try
        {
            while (_remaining > 0)
            {
                await ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

}

/// <summary>Which exceptions from decoders mean "the archive is damaged", and the error that says so.</summary>
internal static class ArchiveFailures
{
    public static bool IsDamage(Exception ex) => ex is InvalidDataException or EndOfStreamException or FormatException
        or OverflowException or SharpCompressException or ArgumentException or NotSupportedException
        || (ex is IOException && ex is not FileNotFoundException and not DirectoryNotFoundException);

    public static VddkException Corrupt(string archivePath, string reason, Exception? inner = null) => new(
        ErrorCodes.ArchiveCorrupt,
        $"The VDDK archive '{archivePath}' is truncated or corrupt: {reason.TrimEnd('.')}. Download it again from VMware/Broadcom and compare its checksum with the published one.",
        archivePath,
        inner);
}
