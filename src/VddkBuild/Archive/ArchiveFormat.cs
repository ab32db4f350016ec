namespace VddkBuild.Archive;

/// <summary>Container formats the reader understands, recognised by their first bytes (never by extension).</summary>
internal enum ArchiveFormat
{
    Unknown,
    Tar,
    TarGzip,
    TarXz,
    TarBzip2,
    Zip,
}

internal static class ArchiveFormatSniffer
{
    /// <summary>How many leading bytes <see cref="Detect"/> wants (a tar header's magic sits at offset 257).</summary>
    public const int HeadLength = 512;

    public static ArchiveFormat Detect(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 2 && head[0] == 0x1f && head[1] == 0x8b)
        {
            return ArchiveFormat.TarGzip;
        }
        if (head.StartsWith((ReadOnlySpan<byte>)[0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z', 0x00]))
        {
            return ArchiveFormat.TarXz;
        }
        if (head.Length >= 4 && head[0] == (byte)'B' && head[1] == (byte)'Z' && head[2] == (byte)'h' && head[3] is >= (byte)'1' and <= (byte)'9')
        {
            return ArchiveFormat.TarBzip2;
        }
        if (head.StartsWith("PK\u0003\u0004"u8) || head.StartsWith("PK\u0005\u0006"u8))
        {
            return ArchiveFormat.Zip;
        }
        return LooksLikeTarHeader(head) ? ArchiveFormat.Tar : ArchiveFormat.Unknown;
    }

    /// <summary>A name, then "ustar" at 257 (POSIX/GNU) or, for old v7 archives, a header checksum that adds up.</summary>
    public static bool LooksLikeTarHeader(ReadOnlySpan<byte> head)
    {
        if (head.Length < 512)
        {
            return false;
        }
        if (head.Slice(257, 5).SequenceEqual("ustar"u8))
        {
            return true;
        }
        if (head[..512].IndexOfAnyExcept((byte)0) < 0)
        {
            return true; // an empty tar: only the end-of-archive blocks
        }
        var stored = head.Slice(148, 8);
        long expected = 0;
        var any = false;
        foreach (var b in stored)
        {
            if (b is >= (byte)'0' and <= (byte)'7')
            {
                expected = (expected * 8) + (b - '0');
                any = true;
            }
            else if (b is 0 or (byte)' ')
            {
                if (any)
                {
                    break;
                }
            }
            else
            {
                return false;
            }
        }
        if (!any || head[0] == 0)
        {
            return false;
        }
        long sum = 0;
        for (var i = 0; i < 512; i++)
        {
            sum += i is >= 148 and < 156 ? (byte)' ' : head[i];
        }
        return sum == expected;
    }

    public static string Describe(ReadOnlySpan<byte> head)
    {
        if (head.Length == 0)
        {
            return "the file is empty";
        }
        if (head.Length >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
        {
            return "it is zstd-compressed, which is not supported";
        }
        if (head.StartsWith("7z\u00bc\u00af"u8) || (head.Length >= 6 && head[0] == (byte)'7' && head[1] == (byte)'z' && head[2] == 0xbc && head[3] == 0xaf))
        {
            return "it is a 7-Zip archive, which is not supported";
        }
        if (head.StartsWith("Rar!"u8))
        {
            return "it is a RAR archive, which is not supported";
        }
        if (head.StartsWith("LZIP"u8))
        {
            return "it is lzip-compressed (tar --lzip), which is not supported";
        }
        if (head.StartsWith("07070"u8) || (head.Length >= 2 && ((head[0] == 0xc7 && head[1] == 0x71) || (head[0] == 0x71 && head[1] == 0xc7))))
        {
            return "it is a cpio archive (cpio, rpm2cpio, bsdtar --format=cpio or newc), not a tar";
        }
        if (head.StartsWith("<"u8) || head.StartsWith("\u00ef\u00bb\u00bf<"u8))
        {
            return "it looks like an HTML or XML page (a download that returned a web page instead of the archive?)";
        }
        return "its first bytes match none of tar, gzip, xz, bzip2 or zip";
    }

    /// <summary>The compression a format names, for messages; null for tar and unknown bytes.</summary>
    public static string? CompressionName(ArchiveFormat format) => format switch
    {
        ArchiveFormat.TarGzip => "gzip",
        ArchiveFormat.TarXz => "xz",
        ArchiveFormat.TarBzip2 => "bzip2",
        ArchiveFormat.Zip => "zip",
        _ => null,
    };
}
