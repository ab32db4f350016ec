using VddkBuild.Images;
using VddkBuild.Oci;

namespace VddkBuild.Tests.Images;

public sealed class PlatformSelectorTests
{
    private static Descriptor Entry(string platform, char fill, IReadOnlyDictionary<string, string>? annotations = null) => new()
    {
        MediaType = MediaTypes.OciManifest,
        Digest = Digest.Parse("sha256:" + new string(fill, 64)),
        Size = 100,
        Platform = Platform.Parse(platform),
        Annotations = annotations,
    };

    private static readonly ImageIndex Multi = new()
    {
        Manifests =
        [
            Entry("linux/arm/v7", '1'),
            Entry("linux/arm64/v8", '2'),
            Entry("linux/amd64", '3'),
            Entry("linux/s390x", '4'),
            Entry("unknown/unknown", '5', new Dictionary<string, string> { ["vnd.docker.reference.type"] = "attestation-manifest" }),
        ],
    };

    [Theory]
    [InlineData("linux/amd64", '3')]
    [InlineData("linux/arm64", '2')]
    [InlineData("linux/arm64/v8", '2')]
    [InlineData("linux/arm/v7", '1')]
    [InlineData("linux/arm", '1')]
    public void Picks_the_matching_platform(string requested, char expected) =>
        Assert.Equal(new string(expected, 64), PlatformSelector.Select(Multi, Platform.Parse(requested), "test").Digest.Hex);

    [Fact]
    public void Arm64_without_variant_in_the_index_serves_a_v8_request()
    {
        var index = new ImageIndex { Manifests = [Entry("linux/amd64", 'a'), Entry("linux/arm64", 'b')] };
        Assert.Equal(new string('b', 64), PlatformSelector.Select(index, Platform.Parse("linux/arm64/v8"), "x").Digest.Hex);
    }

    [Fact]
    public void An_exact_variant_wins_over_index_order()
    {
        var index = new ImageIndex { Manifests = [Entry("linux/arm/v6", 'a'), Entry("linux/arm/v7", 'b')] };
        Assert.Equal(new string('b', 64), PlatformSelector.Select(index, Platform.Parse("linux/arm/v7"), "x").Digest.Hex);
    }

    [Fact]
    public void A_missing_platform_fails_with_VDDK2003_listing_what_exists()
    {
        var ex = Assert.Throws<VddkException>(() => PlatformSelector.Select(Multi, Platform.Parse("linux/ppc64le"), "oci:/base:9"));
        Assert.Equal(ErrorCodes.PlatformNotFound, ex.Code);
        Assert.Contains("linux/ppc64le", ex.Message, StringComparison.Ordinal);
        Assert.Contains("linux/arm/v7, linux/arm64/v8, linux/amd64, linux/s390x", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("unknown", ex.Message, StringComparison.Ordinal);
        Assert.Contains("oci:/base:9", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_requested_variant_that_is_absent_is_not_silently_replaced()
    {
        var index = new ImageIndex { Manifests = [Entry("linux/arm/v6", 'a')] };
        var ex = Assert.Throws<VddkException>(() => PlatformSelector.Select(index, Platform.Parse("linux/arm/v7"), "x"));
        Assert.Equal(ErrorCodes.PlatformNotFound, ex.Code);
    }

    [Fact]
    public void A_config_for_another_architecture_fails_with_VDDK2003()
    {
        var ex = Assert.Throws<VddkException>(() => PlatformSelector.EnsureMatches(Platform.Parse("linux/arm64"), Platform.LinuxAmd64, "oci:/x"));
        Assert.Equal(ErrorCodes.PlatformNotFound, ex.Code);
        Assert.Contains("linux/arm64", ex.Message, StringComparison.Ordinal);
        PlatformSelector.EnsureMatches(Platform.Parse("linux/arm64"), Platform.Parse("linux/arm64/v8"), "oci:/x");
    }
}
