using System.Text;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Tests.Layers;

namespace VddkBuild.Tests.Images;

/// <summary>The same behaviour for oci:DIR and oci-archive:FILE (packed from that folder with GNU tar).</summary>
public sealed class OciLocalSourceTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly TestLayout _layout;

    public OciLocalSourceTests() => _layout = new TestLayout(_temp.Sub("layout"));

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Kinds => new() { "layout", "archive" };

    private IImageSource Open(string kind, string? tag = null) => kind == "layout"
        ? new OciLayoutSource(_layout.Root, tag)
        : new OciArchiveSource(_layout.Pack(Path.Combine(_temp.Path, $"{Guid.NewGuid():N}.tar")), tag);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_single_untagged_manifest_is_resolved_with_exact_bytes(string kind)
    {
        var manifest = _layout.AddImage();
        _layout.WriteIndex(false, (manifest, null));
        await using var source = Open(kind);

        var image = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);

        Assert.Equal(manifest.Digest, image.ManifestDescriptor.Digest);
        Assert.Equal(File.ReadAllBytes(_layout.BlobPath(manifest.Digest)), image.ManifestBytes);
        Assert.Equal(File.ReadAllBytes(_layout.BlobPath(image.Manifest.Config.Digest)), image.ConfigBytes);
        Assert.Equal(2, image.Layers.Count);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_tag_selects_the_manifest_named_by_ref_name(string kind)
    {
        var amd = _layout.AddImage(layerCount: 1);
        var other = _layout.AddImage(layerCount: 3);
        _layout.WriteIndex(false, (amd, "9.4"), (other, "latest"));
        await using var source = Open(kind, "latest");

        var image = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        Assert.Equal(other.Digest, image.ManifestDescriptor.Digest);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task An_unknown_tag_fails_with_VDDK2002_listing_the_tags(string kind)
    {
        _layout.WriteIndex(false, (_layout.AddImage(), "9.4"), (_layout.AddImage(layerCount: 1), "latest"));
        await using var source = Open(kind, "8.10");

        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.BaseImageNotFound, ex.Code);
        Assert.Contains("9.4, latest", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Several_untagged_images_need_a_tag(string kind)
    {
        _layout.WriteIndex(false, (_layout.AddImage(), null), (_layout.AddImage(layerCount: 1), null));
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.BaseReferenceInvalid, ex.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_nested_multi_platform_index_is_narrowed_to_the_requested_platform(string kind)
    {
        var amd = _layout.AddImage("amd64");
        var arm = _layout.AddImage("arm64", "v8");
        var index = _layout.AddIndex([arm, amd]);
        _layout.WriteIndex(false, (index, "9"));
        await using var source = Open(kind, "9");

        Assert.Equal(amd.Digest, (await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None)).ManifestDescriptor.Digest);
        Assert.Equal(arm.Digest, (await source.ResolveAsync(Platform.Parse("linux/arm64"), CancellationToken.None)).ManifestDescriptor.Digest);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.Parse("linux/s390x"), CancellationToken.None));
        Assert.Equal(ErrorCodes.PlatformNotFound, ex.Code);
        Assert.Contains("linux/arm64/v8, linux/amd64", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Docker_manifest_list_and_schema2_manifests_are_read(string kind)
    {
        var amd = _layout.AddImage("amd64", docker: true);
        var list = _layout.AddIndex([amd], docker: true);
        _layout.WriteIndex(false, (list, null));
        await using var source = Open(kind);

        var image = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        Assert.Equal(MediaTypes.DockerManifest, image.ManifestDescriptor.MediaType);
        Assert.All(image.Layers, l => Assert.Equal(MediaTypes.DockerLayerGzip, l.MediaType));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_single_manifest_for_another_architecture_fails_with_VDDK2003(string kind)
    {
        _layout.WriteIndex(false, (_layout.AddImage("arm64"), null));
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.PlatformNotFound, ex.Code);
        Assert.Contains("linux/arm64", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_tampered_layer_fails_with_VDDK2006_when_read_to_the_end(string kind)
    {
        var manifest = _layout.AddImage();
        _layout.WriteIndex(false, (manifest, null));
        var image = await new OciLayoutSource(_layout.Root).ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        var layer = image.Layers[0];
        var bytes = File.ReadAllBytes(_layout.BlobPath(layer.Digest));
        bytes[^5] ^= 0xff; // same size, different content
        File.WriteAllBytes(_layout.BlobPath(layer.Digest), bytes);
        await using var source = Open(kind);

        await using var stream = await source.OpenBlobAsync(layer, CancellationToken.None);
        var ex = await Assert.ThrowsAsync<VddkException>(() => stream.CopyToAsync(Stream.Null));
        Assert.Equal(ErrorCodes.BlobDigestMismatch, ex.Code);
        Assert.Contains(layer.Digest.Value, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_blob_longer_than_its_descriptor_fails_with_VDDK2006(string kind)
    {
        var manifest = _layout.AddImage();
        _layout.WriteIndex(false, (manifest, null));
        var image = await new OciLayoutSource(_layout.Root).ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        File.AppendAllText(_layout.BlobPath(image.Layers[1].Digest), "extra");
        await using var source = Open(kind);

        await using var stream = await source.OpenBlobAsync(image.Layers[1], CancellationToken.None);
        var ex = await Assert.ThrowsAsync<VddkException>(() => stream.CopyToAsync(Stream.Null));
        Assert.Equal(ErrorCodes.BlobDigestMismatch, ex.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_tampered_config_fails_resolution_with_VDDK2006(string kind)
    {
        var manifest = _layout.AddImage();
        _layout.WriteIndex(false, (manifest, null));
        var image = await new OciLayoutSource(_layout.Root).ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        var path = _layout.BlobPath(image.Manifest.Config.Digest);
        File.WriteAllText(path, File.ReadAllText(path).Replace("bash", "BASH", StringComparison.Ordinal));
        await using var source = Open(kind);

        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.BlobDigestMismatch, ex.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_schema1_manifest_fails_with_VDDK2005(string kind)
    {
        var schema1 = _layout.AddBlob(Encoding.UTF8.GetBytes("{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}"), "application/vnd.docker.distribution.manifest.v1+prettyjws");
        _layout.WriteIndex(false, (schema1, null));
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.MediaTypeUnsupported, ex.Code);
        Assert.Contains("schema 1", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task An_artifact_manifest_is_not_a_container_base(string kind)
    {
        var config = _layout.AddBlob("{}"u8.ToArray(), "application/vnd.cncf.helm.config.v1+json");
        var manifest = _layout.AddBlob(Encoding.UTF8.GetBytes($"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{TestLayout.Node(config).ToJsonString()},\"layers\":[]}}"), MediaTypes.OciManifest);
        _layout.WriteIndex(false, (manifest, null));
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.MediaTypeUnsupported, ex.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task Broken_index_json_fails_with_VDDK2004(string kind)
    {
        File.WriteAllText(Path.Combine(_layout.Root, "index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":");
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.ImageLayoutInvalid, ex.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_bad_digest_in_index_json_fails_with_VDDK2004(string kind)
    {
        File.WriteAllText(Path.Combine(_layout.Root, "index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"md5:abc\",\"size\":1}]}");
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.ImageLayoutInvalid, ex.Code);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_missing_oci_layout_file_fails_with_VDDK2002(string kind)
    {
        _layout.WriteIndex(false, (_layout.AddImage(), null));
        File.Delete(Path.Combine(_layout.Root, "oci-layout"));
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.BaseImageNotFound, ex.Code);
        Assert.Contains("oci-layout", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_docker_save_archive_fails_with_VDDK2002_saying_how_to_convert_it(string kind)
    {
        // What docker save (before Docker 25) and podman save write by default: manifest.json, no oci-layout.
        _layout.WriteIndex(false, (_layout.AddImage(), null));
        File.Delete(Path.Combine(_layout.Root, "oci-layout"));
        File.Delete(Path.Combine(_layout.Root, "index.json"));
        File.WriteAllText(Path.Combine(_layout.Root, "manifest.json"), "[{\"Config\":\"blobs/sha256/00\",\"RepoTags\":[\"ubi:latest\"],\"Layers\":[]}]");
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
        Assert.Equal(ErrorCodes.BaseImageNotFound, ex.Code);
        Assert.Contains("docker-archive:", ex.Message, StringComparison.Ordinal);
        Assert.Contains("oci-archive:", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task A_missing_blob_fails_with_VDDK2002(string kind)
    {
        var manifest = _layout.AddImage();
        _layout.WriteIndex(false, (manifest, null));
        var image = await new OciLayoutSource(_layout.Root).ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        File.Delete(_layout.BlobPath(image.Layers[0].Digest));
        await using var source = Open(kind);
        var ex = await Assert.ThrowsAsync<VddkException>(() => source.OpenBlobAsync(image.Layers[0], CancellationToken.None));
        Assert.Equal(ErrorCodes.BaseImageNotFound, ex.Code);
    }

    [Fact]
    public async Task A_missing_folder_or_archive_fails_with_VDDK2002()
    {
        await using var layout = new OciLayoutSource(Path.Combine(_temp.Path, "nope"));
        await using var archive = new OciArchiveSource(Path.Combine(_temp.Path, "nope.tar"));
        Assert.Equal(ErrorCodes.BaseImageNotFound, (await Assert.ThrowsAsync<VddkException>(() => layout.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None))).Code);
        Assert.Equal(ErrorCodes.BaseImageNotFound, (await Assert.ThrowsAsync<VddkException>(() => archive.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None))).Code);
    }

    [Fact]
    public async Task A_gzipped_or_non_tar_archive_fails_with_VDDK2004()
    {
        _layout.WriteIndex(false, (_layout.AddImage(), null));
        var tar = _layout.Pack(Path.Combine(_temp.Path, "base.tar"));
        CliTool.Run("gzip", "-k", tar);
        var junk = Path.Combine(_temp.Path, "junk.tar");
        File.WriteAllBytes(junk, VddkEntries.Bytes("not a tar at all", 4096));

        foreach (var path in new[] { tar + ".gz", junk })
        {
            await using var source = new OciArchiveSource(path);
            var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
            Assert.Equal(ErrorCodes.ImageLayoutInvalid, ex.Code);
        }
    }

    [Theory]
    [InlineData("--format=posix")]
    [InlineData("--format=gnu")]
    [InlineData("--format=ustar")]
    public async Task Archives_in_every_gnu_tar_format_are_read_in_place(string format)
    {
        var manifest = _layout.AddImage();
        _layout.WriteIndex(false, (manifest, "latest"));
        var path = _layout.Pack(Path.Combine(_temp.Path, "base.tar"), format);
        await using var source = new OciArchiveSource(path, "latest");

        var image = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        Assert.Equal(manifest.Digest, image.ManifestDescriptor.Digest);
        foreach (var layer in image.Layers)
        {
            await using var stream = await source.OpenBlobAsync(layer, CancellationToken.None);
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(File.ReadAllBytes(_layout.BlobPath(layer.Digest)), copy.ToArray());
        }
    }

    [Fact]
    public async Task A_member_size_beyond_the_file_or_negative_fails_with_VDDK2004()
    {
        _layout.WriteIndex(false, (_layout.AddImage(), null));
        var tar = File.ReadAllBytes(_layout.Pack(Path.Combine(_temp.Path, "base.tar"), "--format=ustar"));
        foreach (var size in new[] { "77777777777\0"u8.ToArray(), Enumerable.Repeat((byte)0xff, 12).ToArray() })
        {
            var hostile = (byte[])tar.Clone();
            size.CopyTo(hostile, 124); // first member's size field
            var sum = hostile.Take(512).Select((b, i) => i is >= 148 and < 156 ? (int)' ' : b).Sum();
            System.Text.Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(hostile, 148);
            var path = Path.Combine(_temp.Path, $"hostile-{Guid.NewGuid():N}.tar");
            File.WriteAllBytes(path, hostile);

            await using var source = new OciArchiveSource(path);
            var ex = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));
            Assert.Equal(ErrorCodes.ImageLayoutInvalid, ex.Code);
            Assert.Contains("the file ends first", ex.Message, StringComparison.Ordinal); // not a checksum failure
        }
    }
}
