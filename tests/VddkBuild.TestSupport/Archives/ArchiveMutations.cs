namespace VddkBuild.TestSupport.Archives;

/// <summary>Byte-level damage to an archive file, as a bad download or disk would cause it.</summary>
public static class ArchiveMutations
{
    /// <summary>Keeps only the first <paramref name="keepBytes"/> bytes.</summary>
    public static void Truncate(string path, long keepBytes)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.SetLength(keepBytes);
    }

    /// <summary>Keeps the given share of the file (0..1).</summary>
    public static void TruncateTo(string path, double share) => Truncate(path, (long)(new FileInfo(path).Length * share));

    /// <summary>Inverts the byte at <paramref name="offset"/> (negative: from the end).</summary>
    public static void FlipByte(string path, long offset)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset >= 0 ? offset : file.Length + offset;
        var value = file.ReadByte();
        file.Position--;
        file.WriteByte((byte)(value ^ 0xFF));
    }

    /// <summary>Damages the CRC-32 in the gzip trailer (the data itself still decompresses).</summary>
    public static void CorruptGzipTrailerCrc(string path) => FlipByte(path, -8);

    /// <summary>Damages compressed data in the middle of the file.</summary>
    public static void CorruptMiddle(string path) => FlipByte(path, new FileInfo(path).Length / 2);

    /// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/>, e.g. to break a tar header's checksum.</summary>
    public static void Overwrite(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.Position = offset;
        file.Write(bytes);
    }

    /// <summary>
    /// Changes the type flag of the header named <paramref name="entryName"/> in a plain tar and fixes its checksum,
    /// to make types .NET's TarWriter refuses to write (sparse 'S', unknown letters).
    /// </summary>
    public static void RetypeTarEntry(string path, string entryName, char typeFlag) =>
        PatchTarHeader(path, header => HasName(header, entryName), header => header[156] = (byte)typeFlag);

    /// <summary>Sets the size field of the first header of type <paramref name="typeFlag"/> (e.g. 'L', GNU long name).</summary>
    public static void SetTarHeaderSize(string path, char typeFlag, long size) =>
        PatchTarHeader(path, header => header[156] == (byte)typeFlag, header =>
            System.Text.Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(header.Slice(124, 12)));

    /// <summary>Edits the first header of a plain tar that <paramref name="match"/> accepts, then recomputes its checksum.</summary>
    public static void PatchTarHeader(string path, TarHeaderPredicate match, TarHeaderEdit edit)
    {
        var bytes = File.ReadAllBytes(path);
        for (var offset = 0; offset + 512 <= bytes.Length; offset += 512)
        {
            var header = bytes.AsSpan(offset, 512);
            if (!header.Slice(257, 5).SequenceEqual("ustar"u8) || !match(header))
            {
                continue;
            }
            edit(header);
            header.Slice(148, 8).Fill((byte)' ');
            var sum = 0;
            foreach (var b in header)
            {
                sum += b;
            }
            System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header.Slice(148, 8));
            File.WriteAllBytes(path, bytes);
            return;
        }
        throw new ArgumentException($"No matching tar header in '{path}'.", nameof(match));
    }

    /// <summary>
    /// Edits every local (<c>PK\u0003\u0004</c>) and central (<c>PK\u0001\u0002</c>) zip header, found by their signatures;
    /// <paramref name="edit"/> gets the header from its signature on and whether it is the central one. For what .NET's
    /// ZipArchive cannot write: other methods, the encryption flag, another host, name bytes that are not UTF-8.
    /// </summary>
    public static void PatchZipHeaders(string path, ZipHeaderEdit edit)
    {
        var bytes = File.ReadAllBytes(path);
        for (var at = 0; at + 46 <= bytes.Length; at++)
        {
            if (bytes[at] != (byte)'P' || bytes[at + 1] != (byte)'K')
            {
                continue;
            }
            if (bytes[at + 2] == 3 && bytes[at + 3] == 4)
            {
                edit(bytes.AsSpan(at), central: false);
            }
            else if (bytes[at + 2] == 1 && bytes[at + 3] == 2)
            {
                edit(bytes.AsSpan(at), central: true);
            }
        }
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Sets the compression method of every zip entry (the data stays deflate: only the method is looked at).</summary>
    public static void SetZipMethod(string path, ushort method) =>
        PatchZipHeaders(path, (header, central) => System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(header[(central ? 10 : 8)..], method));

    /// <summary>Sets the "encrypted" flag of every zip entry.</summary>
    public static void SetZipEncrypted(string path) =>
        PatchZipHeaders(path, (header, central) => header[central ? 8 : 6] |= 1);

    /// <summary>Sets the host of "version made by" in every central header (0 MS-DOS/Windows, 3 Unix).</summary>
    public static void SetZipHost(string path, byte host) =>
        PatchZipHeaders(path, (header, central) =>
        {
            if (central)
            {
                header[5] = host;
            }
        });

    private static bool HasName(ReadOnlySpan<byte> header, string name)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(name);
        return header[..bytes.Length].SequenceEqual(bytes) && header[bytes.Length] == 0;
    }
}

public delegate bool TarHeaderPredicate(ReadOnlySpan<byte> header);

public delegate void TarHeaderEdit(Span<byte> header);

public delegate void ZipHeaderEdit(Span<byte> header, bool central);
