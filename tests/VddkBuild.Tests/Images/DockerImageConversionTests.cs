using System.Text.Json.Nodes;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Tests.Layers;

namespace VddkBuild.Tests.Images;

public sealed class DockerImageConversionTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly TestLayout _layout;

    public DockerImageConversionTests() => _layout = new TestLayout(_temp.Sub("layout"));

    public void Dispose() => _temp.Dispose();

    private static readonly ImageSettings Settings = new()
    {
        VddkVersion = "8.0.1",
        VddkBuildNumber = "21562716",
        Created = new DateTimeOffset(2023, 3, 29, 12, 15, 42, TimeSpan.Zero),
    };

    private async Task<BuiltImage> BuildAsync(bool dockerBase)
    {
        _layout.WriteIndex(false, (_layout.AddImage(docker: dockerBase), null));
        var baseImage = await new OciLayoutSource(_layout.Root).ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        return ImageBuilder.Build(baseImage, layer, Settings);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_docker_form_has_docker_media_types_the_same_blobs_and_no_annotations(bool dockerBase)
    {
        var oci = await BuildAsync(dockerBase);
        var docker = DockerImageConversion.ToDocker(oci);
        var ociManifest = OciJson.Deserialize<ImageManifest>(oci.ManifestBytes, "manifest");
        var json = JsonNode.Parse(docker.ManifestBytes)!.AsObject();

        Assert.Equal(MediaTypes.DockerManifest, (string?)json["mediaType"]);
        Assert.Equal(2, (int)json["schemaVersion"]!);
        Assert.Equal(MediaTypes.DockerConfig, (string?)json["config"]!["mediaType"]);
        Assert.All(json["layers"]!.AsArray(), l => Assert.Equal(MediaTypes.DockerLayerGzip, (string?)l!["mediaType"]));
        // Schema 2 has no annotations: none on the manifest, the config or any layer.
        Assert.DoesNotContain("annotations", json.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal(["schemaVersion", "mediaType", "config", "layers"], json.Select(p => p.Key));
        // Byte-identical blobs: the same config bytes, and every digest and size the OCI manifest names.
        Assert.Same(oci.ConfigBytes, docker.ConfigBytes);
        Assert.Equal((oci.ConfigDescriptor.Digest.Value, oci.ConfigDescriptor.Size), ((string)json["config"]!["digest"]!, (long)json["config"]!["size"]!));
        Assert.Equal(ociManifest.Layers.Select(l => (l.Digest.Value, l.Size)), json["layers"]!.AsArray().Select(l => ((string)l!["digest"]!, (long)l["size"]!)));
        // Only the manifest, and so the image digest, differs.
        Assert.Equal(TestLayout.Sha256(docker.ManifestBytes), docker.Digest.Value);
        Assert.Equal(docker.ManifestBytes.Length, docker.ManifestDescriptor.Size);
        Assert.Equal(MediaTypes.DockerManifest, docker.ManifestDescriptor.MediaType);
        Assert.NotEqual(oci.Digest, docker.Digest);
        Assert.Equal(oci.VddkLayer, docker.VddkLayer);
    }

    [Fact]
    public async Task The_docker_form_is_reproducible_and_converting_it_again_changes_nothing()
    {
        var oci = await BuildAsync(dockerBase: false);
        var first = DockerImageConversion.ToDocker(oci);
        var second = DockerImageConversion.ToDocker(oci);

        Assert.Equal(first.ManifestBytes, second.ManifestBytes);
        Assert.Same(first, DockerImageConversion.ToDocker(first));
    }

    [Fact]
    public void Layer_types_map_to_schema_2_and_zstd_which_it_cannot_name_is_refused()
    {
        var digest = Digest.Parse("sha256:" + new string('b', 64));
        Descriptor Layer(string mediaType, IReadOnlyList<string>? urls = null) => new()
        {
            MediaType = mediaType, Digest = digest, Size = 7, Urls = urls,
            Annotations = new Dictionary<string, string> { ["org.example"] = "dropped" },
        };

        Assert.Equal(MediaTypes.DockerLayerGzip, DockerImageConversion.ToDockerLayer(Layer(MediaTypes.OciLayerGzip)).MediaType);
        Assert.Equal(DockerImageConversion.DockerLayerTar, DockerImageConversion.ToDockerLayer(Layer(MediaTypes.OciLayerTar)).MediaType);
        var foreign = DockerImageConversion.ToDockerLayer(Layer("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", ["https://example.invalid/l"]));
        Assert.Equal(MediaTypes.DockerForeignLayerGzip, foreign.MediaType);
        Assert.Equal(["https://example.invalid/l"], foreign.Urls!);
        Assert.Null(foreign.Annotations);
        Assert.Equal((digest, 7L), (foreign.Digest, foreign.Size));

        var zstd = Assert.Throws<VddkException>(() => DockerImageConversion.ToDockerLayer(Layer(MediaTypes.OciLayerZstd)));
        Assert.Equal(ErrorCodes.MediaTypeUnsupported, zstd.Code);
        Assert.Contains("VddkImageFormat=OCI", zstd.Message, StringComparison.Ordinal);
    }
}
