using VddkBuild.Images;

namespace VddkBuild.Tests.Images;

public sealed class ImageSourceReferenceTests
{
    [Theory]
    [InlineData("oci:/data/ubi", ImageSourceKind.OciLayout, "/data/ubi", null)]
    [InlineData("oci:/data/ubi:9.4", ImageSourceKind.OciLayout, "/data/ubi", "9.4")]
    [InlineData("oci:relative/dir:registry.example/ubi9:latest", ImageSourceKind.OciLayout, "relative/dir", "registry.example/ubi9:latest")]
    [InlineData("oci-archive:/tmp/ubi.tar", ImageSourceKind.OciArchive, "/tmp/ubi.tar", null)]
    [InlineData("oci-archive:/tmp/ubi.tar:latest", ImageSourceKind.OciArchive, "/tmp/ubi.tar", "latest")]
    [InlineData(@"oci-archive:C:\images\ubi.tar:v1", ImageSourceKind.OciArchive, @"C:\images\ubi.tar", "v1")]
    [InlineData("oci:C:/images/ubi", ImageSourceKind.OciLayout, "C:/images/ubi", null)]
    public void Local_references_split_path_and_tag_at_the_first_colon(string text, ImageSourceKind kind, string path, string? tag)
    {
        var reference = ImageSourceReference.Parse(text);
        Assert.Equal(kind, reference.Kind);
        Assert.Equal(path, reference.Path);
        Assert.Equal(tag, reference.Tag);
        Assert.Equal(text, reference.Raw);
    }

    [Theory]
    [InlineData("registry.access.redhat.com/ubi9/ubi-minimal:latest")]
    [InlineData("docker://quay.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("localhost:5000/ubi")]
    public void Anything_else_is_a_registry_reference_kept_as_written(string text)
    {
        var reference = ImageSourceReference.Parse(text);
        Assert.Equal(ImageSourceKind.Registry, reference.Kind);
        Assert.Equal(text, reference.Raw);
        Assert.Null(reference.Path);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("oci:")]
    [InlineData("oci-archive::tag")]
    [InlineData("oci:/dir:")]
    [InlineData("oci:/dir:bad tag")]
    public void Malformed_references_are_refused_with_VDDK2001(string text)
    {
        var ex = Assert.Throws<VddkException>(() => ImageSourceReference.Parse(text));
        Assert.Equal(ErrorCodes.BaseReferenceInvalid, ex.Code);
    }

    [Fact]
    public void The_factory_needs_a_registry_client_for_registry_references()
    {
        var ex = Assert.Throws<VddkException>(() => ImageSourceFactory.Create("registry.access.redhat.com/ubi9/ubi-minimal"));
        Assert.Equal(ErrorCodes.BaseNeedsRegistry, ex.Code);
        Assert.Contains("registry client", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_factory_creates_local_sources_by_kind()
    {
        await using var layout = ImageSourceFactory.Create("oci:/nonexistent/dir:tag");
        await using var archive = ImageSourceFactory.Create("oci-archive:/nonexistent/file.tar");
        Assert.IsType<OciLayoutSource>(layout);
        Assert.IsType<OciArchiveSource>(archive);
        Assert.Equal("oci:/nonexistent/dir:tag", layout.DisplayName);
    }

    [Fact]
    public void Relative_local_paths_resolve_against_a_given_folder()
    {
        Assert.Equal("/proj/base/ubi", ImageSourceReference.Parse("oci:base/ubi:9").RelativeTo("/proj").Path);
        Assert.Equal("/abs/ubi.tar", ImageSourceReference.Parse("oci-archive:/abs/ubi.tar").RelativeTo("/proj").Path);
        Assert.Equal("oci:base/ubi:9", ImageSourceReference.Parse("oci:base/ubi:9").RelativeTo("/proj").Raw);
        var registry = ImageSourceReference.Parse("quay.io/x/y");
        Assert.Same(registry, registry.RelativeTo("/proj"));
    }
}
