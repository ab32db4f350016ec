using System.IO.Compression;
using System.Text;
using VddkBuild.TestSupport.Archives;

namespace VddkBuild.Tests.Layers;

/// <summary>Hand-made tar headers appended to the sample's tar, for the cases no tar writer produces.</summary>
internal static class CraftedTar
{
    /// <summary>A ustar header; <paramref name="patch"/> writes raw bytes over it before the checksum is computed.</summary>
    public static byte[] Header(string name, char type = '0', long size = 0, string prefix = "", int mode = 0x1A4, Action<byte[]>? patch = null)
    {
        var block = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(block, 0);
        Octal(mode, 8).CopyTo(block, 100);
        Octal(0, 8).CopyTo(block, 108);
        Octal(0, 8).CopyTo(block, 116);
        Octal(size, 12).CopyTo(block, 124);
        Octal(VddkArchiveBuilder.DefaultTime.ToUnixTimeSeconds(), 12).CopyTo(block, 136);
        block[156] = (byte)type;
        "ustar\u000000"u8.CopyTo(block.AsSpan(257));
        Octal(0, 8).CopyTo(block, 329);
        Octal(0, 8).CopyTo(block, 337);
        Encoding.ASCII.GetBytes(prefix).CopyTo(block, 345);
        patch?.Invoke(block);
        block.AsSpan(148, 8).Fill((byte)' ');
        var sum = block.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(block, 148);
        return block;
    }

    /// <summary>A file entry: header and padded content.</summary>
    public static byte[] File(string name, string content, string prefix = "", Action<byte[]>? patch = null)
    {
        var data = Encoding.ASCII.GetBytes(content);
        return [.. Header(name, '0', data.Length, prefix, patch: patch), .. Padded(data)];
    }

    /// <summary>A pax extended header ('x') with these "key=value" records, for the entry after it.</summary>
    public static byte[] Pax(params string[] records)
    {
        var body = new StringBuilder();
        foreach (var record in records)
        {
            var rest = " " + record + "\n";
            var length = rest.Length + 1;
            while (length.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + rest.Length != length)
            {
                length++;
            }
            body.Append(length.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append(rest);
        }
        var bytes = Encoding.ASCII.GetBytes(body.ToString());
        return [.. Header("PaxHeaders/entry", 'x', bytes.Length), .. Padded(bytes)];
    }

    /// <summary>The sample archive's tar without its end blocks, then <paramref name="extra"/>, two end blocks, gzip.</summary>
    public static void WriteSampleWith(string path, params byte[][] extra) => WriteSampleWith(path, 2, extra);

    /// <summary>As above, with <paramref name="endBlocks"/> end-of-archive blocks.</summary>
    public static void WriteSampleWith(string path, int endBlocks, params byte[][] extra)
    {
        var tar = SampleVddkArchive.CreateBuilder(SampleVddkArchiveOptions.Small);
        tar.Compression = ArchiveCompression.None;
        var bytes = tar.ToBytes();
        var end = bytes.Length;
        while (bytes.AsSpan(end - 512, 512).IndexOfAnyExcept((byte)0) < 0)
        {
            end -= 512;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var output = new GZipStream(System.IO.File.Create(path), CompressionLevel.Optimal);
        output.Write(bytes.AsSpan(0, end));
        foreach (var part in extra)
        {
            output.Write(part);
        }
        output.Write(new byte[512 * endBlocks]);
    }

    private static byte[] Octal(long value, int length) =>
        Encoding.ASCII.GetBytes(Convert.ToString(value, 8).PadLeft(length - 1, '0') + "\0");

    private static byte[] Padded(byte[] data) => [.. data, .. new byte[(512 - (data.Length % 512)) % 512]];
}
