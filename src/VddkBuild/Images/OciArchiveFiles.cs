using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using VddkBuild.Threading;

namespace VddkBuild.Images;

/// <summary>
/// The files of an OCI layout inside a tar (<c>oci-archive:FILE</c>), read in place: one scan over the headers
/// records where each member's bytes are, and blobs are then read as windows of the archive file. Nothing is
/// extracted. Understands ustar, pax (path/size), GNU long names and hard links, as written by skopeo, podman,
/// GNU tar and bsdtar.
/// </summary>
internal sealed class OciArchiveFiles : IOciLayoutFiles
{
    private const int Block = 512;
    private const int MaxMetadataRecord = 1 << 20;

    private readonly string _archivePath;
    private readonly SemaphoreSlim _scanLock = new(1, 1);
    private Dictionary<string, (long Offset, long Size)>? _members;

    public OciArchiveFiles(string archivePath) => _archivePath = archivePath;

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<Stream?> TryOpenAsync(string relativePath, CancellationToken cancellationToken)
    {
        var members = await ScanOnceAsync(cancellationToken).ConfigureAwait(false);
        return members.TryGetValue(relativePath, out var member)
            ? new TarMemberStream(_archivePath, member.Offset, member.Size)
            : null;
    }

    public ValueTask DisposeAsync()
    {
        _scanLock.Dispose();
        return ValueTask.CompletedTask;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    private async ValueTask<Dictionary<string, (long Offset, long Size)>> ScanOnceAsync(CancellationToken ct)
    {
        if (_members is not null)
        {
            return _members;
        }
        await _scanLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return _members ??= await ScanAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _scanLock.Release();
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<Dictionary<string, (long Offset, long Size)>> ScanAsync(CancellationToken ct)
    {
        FileStream file;
        try
        {
            file = new FileStream(_archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, Block * 8, FileOptions.Asynchronous);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VddkException(ErrorCodes.BaseImageNotFound,
                $"OCI archive '{_archivePath}' does not exist. Check the path (write oci-archive:FILE[:tag]).", _archivePath, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.BaseImageNotFound, $"Cannot read OCI archive '{_archivePath}': {ex.Message}.", _archivePath, ex);
        }

        await using var _ = file.ConfigureAwait(false);
        var members = new Dictionary<string, (long Offset, long Size)>(StringComparer.Ordinal);
        var header = new byte[Block];
        string? nextPath = null, nextLink = null;
        long? nextSize = null;
        long position = 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            file.Position = position;
            int got = await file.ReadAtLeastAsync(header, Block, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (got == 0 && position > 0)
            {
                break; // some writers omit the end-of-archive blocks
            }
            if (got < Block)
            {
                throw Invalid(position == 0 ? "it is empty or not a tar file" : $"it ends inside a header at byte {position}");
            }
            if (header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                break;
            }
            if (position == 0 && header[0] == 0x1f && header[1] == 0x8b)
            {
                throw Invalid("it is gzip-compressed; OCI archives are plain tar files. Decompress it first (gunzip)");
            }
            if (!ChecksumOk(header))
            {
                throw Invalid($"the tar header at byte {position} has a wrong checksum (not a tar file, or damaged)");
            }

            long size = nextSize ?? ParseNumber(header.AsSpan(124, 12), position);
            long dataOffset = position + Block;
            if (size < 0 || size > file.Length - dataOffset)
            {
                throw Invalid($"the member at byte {position} needs {size} bytes but the file ends first (truncated)");
            }
            char type = (char)header[156];
            switch (type)
            {
                case 'x':
                    foreach (var (key, value) in ParsePax(await ReadMetadataAsync(file, dataOffset, size, ct).ConfigureAwait(false)))
                    {
                        switch (key)
                        {
                            case "path": nextPath = value; break;
                            case "linkpath": nextLink = value; break;
                            case "size" when long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var s): nextSize = s; break;
                        }
                    }
                    break;
                case 'L':
                    nextPath = CString(await ReadMetadataAsync(file, dataOffset, size, ct).ConfigureAwait(false));
                    break;
                case 'K':
                    nextLink = CString(await ReadMetadataAsync(file, dataOffset, size, ct).ConfigureAwait(false));
                    break;
                case 'g':
                    break;
                default:
                    var name = Normalise(nextPath ?? HeaderName(header));
                    if (type is '0' or '\0' or '7')
                    {
                        members[name] = (dataOffset, size);
                    }
                    else if (type == '1' && members.TryGetValue(Normalise(nextLink ?? CString(header.AsSpan(157, 100))), out var target))
                    {
                        members[name] = target;
                    }
                    (nextPath, nextLink, nextSize) = (null, null, null);
                    break;
            }
            if (type is '1' or '2' or '5')
            {
                size = 0; // link and directory headers carry no data whatever their size field says
            }
            position = dataOffset + (size + Block - 1) / Block * Block;
        }
        return members;
    }

    private VddkException Invalid(string why) =>
        new(ErrorCodes.ImageLayoutInvalid, $"OCI archive '{_archivePath}' cannot be read: {why}. Re-create it, e.g. with skopeo copy ... oci-archive:FILE.", _archivePath);

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<byte[]> ReadMetadataAsync(FileStream file, long offset, long size, CancellationToken ct)
    {
        if (size > MaxMetadataRecord)
        {
            throw Invalid($"an extended header at byte {offset} is {size} bytes long");
        }
        var data = new byte[size];
        file.Position = offset;
        await file.ReadExactlyAsync(data, ct).ConfigureAwait(false);
        return data;
    }

    private static bool ChecksumOk(byte[] header)
    {
        long stored = 0;
        foreach (var b in header.AsSpan(148, 8))
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                stored = stored * 8 + (b - '0');
            }
            else if (b is 0 or (byte)' ' && stored > 0)
            {
                break;
            }
        }
        long unsignedSum = 0, signedSum = 0;
        for (int i = 0; i < Block; i++)
        {
            byte b = i is >= 148 and < 156 ? (byte)' ' : header[i];
            unsignedSum += b;
            signedSum += (sbyte)b;
        }
        return stored == unsignedSum || stored == signedSum;
    }

    private long ParseNumber(ReadOnlySpan<byte> field, long position)
    {
        if ((field[0] & 0x80) != 0)
        {
            // GNU base-256: big-endian binary after the marker bit; sizes this large are never negative.
            return (long)BinaryPrimitives.ReadUInt64BigEndian(field[^8..]);
        }
        long value = 0;
        foreach (var b in field)
        {
            if (b is 0 or (byte)' ')
            {
                if (value > 0) break;
                continue;
            }
            if (b is < (byte)'0' or > (byte)'7')
            {
                throw Invalid($"the size field of the header at byte {position} is not a number");
            }
            value = value * 8 + (b - '0');
        }
        return value;
    }

    private static string HeaderName(byte[] header)
    {
        var name = CString(header.AsSpan(0, 100));
        bool ustar = header.AsSpan(257, 5).SequenceEqual("ustar"u8);
        var prefix = ustar ? CString(header.AsSpan(345, 155)) : string.Empty;
        return prefix.Length > 0 ? prefix + "/" + name : name;
    }

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        int end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? bytes : bytes[..end]);
    }

    private static IEnumerable<(string Key, string Value)> ParsePax(byte[] data)
    {
        int position = 0;
        while (position < data.Length)
        {
            int space = Array.IndexOf(data, (byte)' ', position);
            if (space < 0 || !int.TryParse(Encoding.ASCII.GetString(data, position, space - position), NumberStyles.None, CultureInfo.InvariantCulture, out var length)
                || length <= 0 || position + length > data.Length)
            {
                yield break;
            }
            var record = Encoding.UTF8.GetString(data, space + 1, position + length - space - 2); // without the '\n'
            int equals = record.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                yield return (record[..equals], record[(equals + 1)..]);
            }
            position += length;
        }
    }

    private static string Normalise(string name)
    {
        while (name.StartsWith("./", StringComparison.Ordinal))
        {
            name = name[2..];
        }
        return name.TrimStart('/');
    }
}
