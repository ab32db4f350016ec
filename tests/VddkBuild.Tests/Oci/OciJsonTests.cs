using System.Text;
using VddkBuild.Oci;

namespace VddkBuild.Tests.Oci;

public sealed class OciJsonTests
{
    private static string Manifest(string configSize, string layerSize) => $$"""
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
         "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{{new string('a', 64)}}","size":{{configSize}}},
         "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{{new string('b', 64)}}","size":{{layerSize}}}]}
        """;

    [Theory]
    [InlineData("-1", "10")]
    [InlineData("2", "-9223372036854775808")]
    public void Manifest_WithANegativeSize_FailsWithVddk3010(string configSize, string layerSize)
    {
        var error = Assert.Throws<VddkException>(() => OciJson.Deserialize<ImageManifest>(Encoding.UTF8.GetBytes(Manifest(configSize, layerSize)), "the manifest of base"));

        Assert.Equal(ErrorCodes.RegistryResponseInvalid, error.Code);
        Assert.Contains("negative size", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Manifest_WithSizes_IsRead()
    {
        var manifest = OciJson.Deserialize<ImageManifest>(Encoding.UTF8.GetBytes(Manifest("2", "10")), "the manifest of base");

        Assert.Equal(2, manifest.Config.Size);
        Assert.Equal(10, Assert.Single(manifest.Layers).Size);
    }
}
