using System.IO.Compression;
using System.Security.Cryptography;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Layers;
using VddkBuild.Oci;
using VddkBuild.TestSupport.Archives;

namespace VddkBuild.Tests.Layers;

public sealed class ArchiveAsLayerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string SmallSample() => SampleVddkArchive.WriteTo(_temp.Sub("sample"), SampleVddkArchiveOptions.Small);

    /// <summary>The layer this project makes from the small sample, gunzipped and gzipped again as one member, under a VMware name.</summary>
    private async Task<(string Archive, byte[] Tar)> CanonicalArchiveAsync(Func<byte[], byte[]>? editTar = null)
    {
        var sample = SmallSample();
        var layer = await NormalLayerAsync(sample, _temp.Sub("first-layer"));
        byte[] tar;
        await using (var gunzip = new GZipStream(File.OpenRead(layer.FilePath), CompressionMode.Decompress))
        {
            var memory = new MemoryStream();
            await gunzip.CopyToAsync(memory);
            tar = memory.ToArray();
        }
        tar = editTar?.Invoke(tar) ?? tar;
        var path = Path.Combine(_temp.Sub("canonical"), Path.GetFileName(sample));
        await File.WriteAllBytesAsync(path, Gzip(tar));
        return (path, tar);
    }

    private static byte[] Gzip(byte[] data)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(data);
        }
        return output.ToArray();
    }

    private static async Task<LayerBlob> NormalLayerAsync(string archive, string directory)
    {
        await using var writer = new LayerWriter(directory);
        await new VddkArchiveReader(archive, VddkArchiveReadOptions.Default, NullBuildLog.Instance).ReadAsync(writer, CancellationToken.None);
        return await writer.CompleteAsync(CancellationToken.None);
    }

    private static async Task<Digest> DiffIdOnlyAsync(string archive)
    {
        await using var probe = LayerWriter.ForDiffIdOnly();
        await new VddkArchiveReader(archive, VddkArchiveReadOptions.Default, NullBuildLog.Instance).ReadAsync(probe, CancellationToken.None);
        return await probe.CompleteDiffIdAsync(CancellationToken.None);
    }

    [Fact]
    public async Task The_diffid_only_writer_gives_the_diffid_of_the_real_layer()
    {
        var sample = SmallSample();
        var layer = await NormalLayerAsync(sample, _temp.Sub("layer"));
        Assert.Equal(layer.DiffId, await DiffIdOnlyAsync(sample));
    }

    [Fact]
    public async Task An_archive_that_already_is_the_layer_is_used_unchanged()
    {
        var (archive, tar) = await CanonicalArchiveAsync();
        Assert.True(ArchiveAsLayer.MightQualify(archive));
        var diffId = await DiffIdOnlyAsync(archive);
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), diffId.Value);

        var layers = _temp.Sub("layers");
        var layer = await ArchiveAsLayer.TryUseAsync(archive, diffId, layers, CancellationToken.None);

        Assert.NotNull(layer);
        var bytes = await File.ReadAllBytesAsync(archive);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(layer.FilePath));
        Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)), layer.Descriptor.Digest.Value);
        Assert.Equal(bytes.Length, layer.Descriptor.Size);
        Assert.Equal(MediaTypes.OciLayerGzip, layer.Descriptor.MediaType);
        Assert.Equal($"sha256-{layer.Descriptor.Digest.Hex}.tar.gz", Path.GetFileName(layer.FilePath));
        // Same content as the normal path's layer: only the compressed bytes differ.
        Assert.Equal((await NormalLayerAsync(archive, _temp.Sub("normal"))).DiffId, layer.DiffId);
        Assert.Single(Directory.GetFiles(layers));
    }

    [Fact]
    public void A_vmware_style_gnu_tar_archive_fails_the_pre_check()
    {
        Assert.False(ArchiveAsLayer.MightQualify(SmallSample()));
        var gnuWithOwner = new VddkArchiveBuilder { Format = System.Formats.Tar.TarEntryFormat.Gnu }.AddMinimalVddk();
        var path = Path.Combine(_temp.Sub("gnu"), "VMware-vix-disklib-8.0.1-1.x86_64.tar.gz");
        gnuWithOwner.Write(path);
        Assert.False(ArchiveAsLayer.MightQualify(path));
    }

    [Fact]
    public async Task Files_that_are_not_gzip_fail_the_pre_check()
    {
        var plain = Path.Combine(_temp.Path, "plain.tar");
        await File.WriteAllBytesAsync(plain, new byte[4096]);
        Assert.False(ArchiveAsLayer.MightQualify(plain));
        var truncated = Path.Combine(_temp.Path, "truncated.tar.gz");
        await File.WriteAllBytesAsync(truncated, [0x1f, 0x8b, 8, 0]);
        Assert.False(ArchiveAsLayer.MightQualify(truncated));
        Assert.False(ArchiveAsLayer.MightQualify(Path.Combine(_temp.Path, "missing.tar.gz")));
    }

    [Fact]
    public async Task A_mode_the_layer_would_widen_makes_the_archive_unusable()
    {
        // The root folder as 0700: the layer writes 0705, so the archive's tar is not the layer's.
        var (archive, _) = await CanonicalArchiveAsync(tar =>
        {
            "0000700\0"u8.CopyTo(tar.AsSpan(100));
            FixChecksum(tar.AsSpan(0, 512));
            return tar;
        });
        Assert.True(ArchiveAsLayer.MightQualify(archive));
        var layers = _temp.Sub("layers");
        Assert.Null(await ArchiveAsLayer.TryUseAsync(archive, await DiffIdOnlyAsync(archive), layers, CancellationToken.None));
        Assert.Empty(Directory.GetFileSystemEntries(layers));
    }

    [Fact]
    public async Task Bytes_after_the_gzip_member_make_the_archive_unusable()
    {
        var (archive, _) = await CanonicalArchiveAsync();
        var diffId = await DiffIdOnlyAsync(archive);
        await File.AppendAllTextAsync(archive, "trailing garbage");
        var layers = _temp.Sub("layers");
        Assert.Null(await ArchiveAsLayer.TryUseAsync(archive, diffId, layers, CancellationToken.None));
        Assert.Empty(Directory.GetFileSystemEntries(layers));
    }

    [Fact]
    public async Task A_multi_member_archive_is_not_used()
    {
        // Our own layer: several 1 MiB members, whose last trailer covers only the last member.
        var sample = SmallSample();
        var layer = await NormalLayerAsync(sample, _temp.Sub("layer"));
        var archive = Path.Combine(_temp.Sub("multi"), Path.GetFileName(sample));
        File.Copy(layer.FilePath, archive);
        Assert.True(ArchiveAsLayer.MightQualify(archive));
        Assert.Null(await ArchiveAsLayer.TryUseAsync(archive, layer.DiffId, _temp.Sub("layers"), CancellationToken.None));
    }

    [Fact]
    public async Task Another_diffid_is_not_used()
    {
        var (archive, _) = await CanonicalArchiveAsync();
        var layers = _temp.Sub("layers");
        Assert.Null(await ArchiveAsLayer.TryUseAsync(archive, Digest.Compute([1, 2, 3]), layers, CancellationToken.None));
        Assert.Empty(Directory.GetFileSystemEntries(layers));
    }

    [Fact]
    public void The_root_header_check_looks_at_owner_magic_and_type()
    {
        var header = new byte[512];
        System.Text.Encoding.ASCII.GetBytes(ImageSettings.TreeRoot + "/").CopyTo(header, 0);
        "0000755\0"u8.CopyTo(header.AsSpan(100));
        "0000000\0"u8.CopyTo(header.AsSpan(108));
        "0000000\0"u8.CopyTo(header.AsSpan(116));
        header[156] = (byte)'5';
        "ustar\u000000"u8.CopyTo(header.AsSpan(257));
        "0000000\0"u8.CopyTo(header.AsSpan(329));
        "0000000\0"u8.CopyTo(header.AsSpan(337));
        Assert.True(ArchiveAsLayer.IsCanonicalRootHeader(header));

        Assert.False(ArchiveAsLayer.IsCanonicalRootHeader(With(header, 265, "mts"u8)));        // owner name
        Assert.False(ArchiveAsLayer.IsCanonicalRootHeader(With(header, 108, "0001750\0"u8)));  // uid 1000
        Assert.False(ArchiveAsLayer.IsCanonicalRootHeader(With(header, 257, "ustar  \0"u8)));  // GNU magic
        Assert.False(ArchiveAsLayer.IsCanonicalRootHeader(With(header, 156, "0"u8)));          // a file, not the folder
        Assert.False(ArchiveAsLayer.IsCanonicalRootHeader(With(header, 0, "./"u8)));           // "./" prefix
    }

    private static byte[] With(byte[] header, int offset, ReadOnlySpan<byte> bytes)
    {
        var copy = header.ToArray();
        bytes.CopyTo(copy.AsSpan(offset));
        return copy;
    }

    private static void FixChecksum(Span<byte> header)
    {
        header.Slice(148, 8).Fill((byte)' ');
        var sum = 0;
        foreach (var b in header)
        {
            sum += b;
        }
        System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(header[148..]);
    }
}
