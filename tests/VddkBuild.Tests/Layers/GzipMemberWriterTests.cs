using System.IO.Compression;
using VddkBuild.Layers;

namespace VddkBuild.Tests.Layers;

public sealed class GzipMemberWriterTests
{
    private static async Task<byte[]> MemberAsync(byte[] data, CompressionLevel level = CompressionLevel.Optimal)
    {
        var output = new MemoryStream();
        await using (var member = new GzipMemberWriter(output, level))
        {
            await member.WriteAsync(data);
            await member.FinishAsync(CancellationToken.None);
        }
        return output.ToArray();
    }

    [Fact]
    public async Task Concatenated_members_decompress_to_the_concatenated_input()
    {
        var a = VddkEntries.Bytes("first chunk", 300_000);
        var b = VddkEntries.Bytes("second chunk", 123_457);
        byte[] both = [.. await MemberAsync(a), .. await MemberAsync(b, CompressionLevel.Fastest)];

        using var reader = new GZipStream(new MemoryStream(both), CompressionMode.Decompress);
        var result = new MemoryStream();
        await reader.CopyToAsync(result);
        Assert.Equal([.. a, .. b], result.ToArray());
    }

    [Fact]
    public async Task An_empty_member_is_valid_gzip()
    {
        var bytes = await MemberAsync([]);
        using var reader = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
        Assert.Equal(-1, reader.ReadByte());
        Assert.Equal(0u, BitConverter.ToUInt32(bytes, bytes.Length - 4));
    }

    [Fact]
    public async Task The_trailer_carries_crc32_and_length()
    {
        var data = VddkEntries.Bytes("crc", 70_000);
        var bytes = await MemberAsync(data);
        Assert.Equal(System.IO.Hashing.Crc32.HashToUInt32(data), BitConverter.ToUInt32(bytes, bytes.Length - 8));
        Assert.Equal((uint)data.Length, BitConverter.ToUInt32(bytes, bytes.Length - 4));
    }

    [Fact]
    public async Task Gnu_gzip_accepts_a_member()
    {
        var path = Path.Combine(Path.GetTempPath(), $"member-{Guid.NewGuid():N}.gz");
        try
        {
            await File.WriteAllBytesAsync(path, await MemberAsync(VddkEntries.Bytes("gnu", 50_000)));
            CliTool.Run("gzip", "-t", path);
            var (_, raw) = CliTool.Run("gzip", "-dc", path);
            Assert.Equal(VddkEntries.Bytes("gnu", 50_000), raw);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
