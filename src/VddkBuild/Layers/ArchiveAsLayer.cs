using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Security.Cryptography;
using VddkBuild.Images;
using VddkBuild.Oci;

namespace VddkBuild.Layers;

/// <summary>
/// The shortcut of "crane append": when the archive's own gzip already holds exactly the tar the layer would hold,
/// the archive file itself is the layer blob (digest = sha256 of the file, diffID = sha256 of its tar) and nothing is
/// recompressed.
/// </summary>
/// <remarks>
/// <para>The rule is byte equality, not a list of properties: the archive qualifies only when gunzip of it is
/// byte-for-byte the tar <see cref="LayerWriter"/> would write from its entries (same order, modes with o+r/o+rx,
/// uid/gid 0 without names, clamped mtimes, ustar/pax headers as that writer encodes them, parents present, no mac
/// metadata, two end blocks and nothing after). The image is therefore identical in content to the normal path's
/// (same diffID); only the compressed bytes differ, and they are the archive's, so the result is as reproducible as the
/// archive. The file must also be one plain gzip member whose trailer (CRC-32, length) covers the whole tar, with no
/// bytes after it.</para>
/// <para>Real VDDK archives never qualify: VMware writes them with GNU tar (magic "ustar  ", owner names and ids of
/// its build machine), so <see cref="MightQualify"/> rejects them after reading one header. What does qualify is an
/// archive made the way this project makes layers (for example a layer written by this project and gunzipped/gzipped
/// into one member, or `tar --format=ustar --owner=0 --group=0 --numeric-owner` of a tree already normalised).</para>
/// </remarks>
public static class ArchiveAsLayer
{
    private const int TarBlock = DeterministicTarWriter.BlockSize;

    /// <summary>
    /// Cheap pre-check (reads a few KB): the file is gzip and its first tar header is the tree root as
    /// <see cref="LayerWriter"/> writes headers (ustar magic "ustar\0" version "00", uid/gid 0, no owner names, zero
    /// device numbers). False for every archive made by GNU tar with owners, i.e. every VMware archive.
    /// </summary>
    public static bool MightQualify(string archivePath)
    {
        try
        {
            using var file = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
            Span<byte> magic = stackalloc byte[3];
            if (file.Read(magic) != 3 || magic[0] != 0x1f || magic[1] != 0x8b || magic[2] != 8)
            {
                return false;
            }
            file.Position = 0;
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            var header = new byte[TarBlock];
            gzip.ReadExactly(header);
            return IsCanonicalRootHeader(header);
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException or EndOfStreamException)
        {
            return false; // not readable as gzip+tar here: the normal path reports what is wrong
        }
    }

    internal static bool IsCanonicalRootHeader(ReadOnlySpan<byte> header)
    {
        var root = System.Text.Encoding.ASCII.GetBytes(ImageSettings.TreeRoot + "/");
        return header[..root.Length].SequenceEqual(root)
            && header[root.Length..100].IndexOfAnyExcept((byte)0) < 0
            && header[108..116].SequenceEqual("0000000\0"u8)   // uid
            && header[116..124].SequenceEqual("0000000\0"u8)       // gid
            && header[156] == (byte)'5'
            && header[257..265].SequenceEqual("ustar\u000000"u8)
            && header[265..329].IndexOfAnyExcept((byte)0) < 0      // uname, gname
            && header[329..345].SequenceEqual("0000000\00000000\0"u8);
    }

    /// <summary>
    /// Streams the archive once: hashes it, gunzips and hashes the tar, and copies the bytes read into the layer folder
    /// under a temporary name. When the tar's sha256 equals <paramref name="layerDiffId"/> (what the layer writer
    /// computed from the same archive) and the file is one member whose trailer covers everything, the copy is
    /// published as <c>sha256-&lt;hex&gt;.tar.gz</c> and returned; otherwise the copy is deleted and null returned.
    /// The copy is made from the very bytes hashed, so a file changed meanwhile cannot slip through.
    /// </summary>
    public static async Task<LayerBlob?> TryUseAsync(string archivePath, Digest layerDiffId, string layerDirectory, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        ArgumentException.ThrowIfNullOrEmpty(layerDirectory);
        var directory = Path.GetFullPath(layerDirectory);
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".archive-layer-{Guid.NewGuid():N}.tar.gz.tmp");
        var published = false;
        try
        {
            Digest fileDigest;
            long fileLength;
            {
                await using var source = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
                await using var copy = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using var tee = new TeeReadStream(source, copy);
                Digest tarDigest;
                uint crc;
                long tarLength;
                try
                {
                    (tarDigest, crc, tarLength) = await HashTarAsync(tee, cancellationToken).ConfigureAwait(false);
                }
                catch (InvalidDataException)
                {
                    return null;
                }
                await tee.DrainAsync(cancellationToken).ConfigureAwait(false); // bytes after the gzip end (if any) belong to the file's digest
                fileDigest = tee.Digest;
                fileLength = tee.Length;
                await copy.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (tarDigest != layerDiffId || !tee.EndsWithTrailer(crc, tarLength))
                {
                    return null;
                }
            }

            var final = Path.Combine(directory, $"sha256-{fileDigest.Hex}.tar.gz");
            if (File.Exists(final) && new FileInfo(final).Length == fileLength)
            {
                File.Delete(temp);
            }
            else
            {
                File.Move(temp, final, overwrite: true);
            }
            published = true;
            return new LayerBlob(final, new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = fileDigest, Size = fileLength }, layerDiffId);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not copy the archive into the layer folder '{directory}': {ex.Message}. Check free space and permissions.", directory, ex);
        }
        finally
        {
            if (!published)
            {
                try { File.Delete(temp); } catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { /* a stray .tmp is never taken for a layer */ }
            }
        }
    }

    private static async Task<(Digest Digest, uint Crc, long Length)> HashTarAsync(Stream compressed, CancellationToken cancellationToken)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var crc = new Crc32();
        long length = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        try
        {
            await using var gzip = new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true);
            int read;
            while ((read = await gzip.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                sha.AppendData(buffer, 0, read);
                crc.Append(buffer.AsSpan(0, read));
                length += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return (Digest.FromSha256Bytes(sha.GetHashAndReset()), crc.GetCurrentHashAsUInt32(), length);
    }

    /// <summary>Reads from a source, hashing every byte and writing it to a copy; remembers the last 8 bytes.</summary>
    private sealed class TeeReadStream(Stream source, Stream copy) : Stream
    {
        private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly byte[] _tail = new byte[8];

        public Digest Digest => Digest.FromSha256Bytes(_sha.GetCurrentHash());

        public override long Length => _length;

        private long _length;

        /// <summary>True when the file's last 8 bytes are a gzip trailer for <paramref name="crc"/> and <paramref name="length"/>.</summary>
        public bool EndsWithTrailer(uint crc, long length) =>
            _length >= 18
            && BinaryPrimitives.ReadUInt32LittleEndian(_tail) == crc
            && BinaryPrimitives.ReadUInt32LittleEndian(_tail.AsSpan(4)) == unchecked((uint)length);

        public async Task DrainAsync(CancellationToken cancellationToken)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 16);
            try
            {
                while (await ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0)
                {
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Position { get => _length; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read > 0)
            {
                var span = buffer.Span[..read];
                _sha.AppendData(span);
                Remember(span);
                _length += read;
                await copy.WriteAsync(buffer[..read], cancellationToken).ConfigureAwait(false);
            }
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private void Remember(ReadOnlySpan<byte> span)
        {
            if (span.Length >= 8)
            {
                span[^8..].CopyTo(_tail);
                return;
            }
            // Shift the kept tail left and append the few new bytes.
            _tail.AsSpan(span.Length).CopyTo(_tail);
            span.CopyTo(_tail.AsSpan(8 - span.Length));
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _sha.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
