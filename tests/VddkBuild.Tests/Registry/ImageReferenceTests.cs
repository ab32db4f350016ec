using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class ImageReferenceTests
{
    [Theory]
    [InlineData("nginx", "docker.io", "library/nginx", null)]
    [InlineData("nginx:1.25", "docker.io", "library/nginx", "1.25")]
    [InlineData("user/app:v1", "docker.io", "user/app", "v1")]
    [InlineData("docker.io/nginx", "docker.io", "library/nginx", null)]
    [InlineData("index.docker.io/library/nginx:x", "docker.io", "library/nginx", "x")]
    [InlineData("localhost/app", "localhost", "app", null)]
    [InlineData("localhost:5000/team/app:1", "localhost:5000", "team/app", "1")]
    [InlineData("127.0.0.1:5000/openshift-mtv/vddk:8.0.1", "127.0.0.1:5000", "openshift-mtv/vddk", "8.0.1")]
    [InlineData("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c")]
    [InlineData("Registry.Example.COM/ns/img", "registry.example.com", "ns/img", null)]
    [InlineData("default-route-openshift-image-registry.apps.example.com/openshift-mtv/vddk:8.0.1", "default-route-openshift-image-registry.apps.example.com", "openshift-mtv/vddk", "8.0.1")]
    [InlineData("quay.io/a/b/c/d:latest", "quay.io", "a/b/c/d", "latest")]
    [InlineData("reg.io/a__b/c-d.e_f:T_1.x-y", "reg.io", "a__b/c-d.e_f", "T_1.x-y")]
    public void Parse_SplitsRegistryRepositoryAndTag(string text, string registry, string repository, string? tag)
    {
        var reference = ImageReference.Parse(text);

        Assert.Equal(registry, reference.Registry);
        Assert.Equal(repository, reference.Repository);
        Assert.Equal(tag, reference.Tag);
        Assert.Null(reference.Digest);
    }

    [Fact]
    public void Parse_WithDigest_KeepsTagAndDigest_AndManifestReferenceIsTheDigest()
    {
        var digest = "sha256:" + new string('a', 64);

        var reference = ImageReference.Parse($"127.0.0.1:5000/a/b:1@{digest}");

        Assert.Equal("1", reference.Tag);
        Assert.Equal(digest, reference.Digest!.Value.Value);
        Assert.Equal(digest, reference.ManifestReference);
        Assert.Equal($"127.0.0.1:5000/a/b:1@{digest}", reference.ToString());
    }

    [Fact]
    public void DockerHub_UsesItsApiHostForRequests()
    {
        Assert.Equal("registry-1.docker.io", ImageReference.Parse("nginx").ApiAuthority);
        Assert.Equal("127.0.0.1:5000", ImageReference.Parse("127.0.0.1:5000/x").ApiAuthority);
    }

    [Fact]
    public void ManifestReference_DefaultsToLatest()
    {
        Assert.Equal("latest", ImageReference.Parse("quay.io/a/b").ManifestReference);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("https://quay.io/a/b", "scheme")]
    [InlineData("quay.io/Org/img", "uppercase")]
    [InlineData("quay.io/a//b", "empty component")]
    [InlineData("quay.io/a/b/", "empty component")]
    [InlineData("quay.io/-a/b", "'-a' is invalid")]
    [InlineData("quay.io:99999/a", "port")]
    [InlineData("quay.io:/a", "port")]
    [InlineData("quay.io/a@sha256:abc", "digest")]
    [InlineData("[::1/a", "IPv6")]
    [InlineData("quay io/a", "whitespace")]
    public void Parse_RejectsInvalidReferences_SayingWhatIsWrong(string text, string reason)
    {
        var error = Assert.Throws<VddkException>(() => ImageReference.Parse(text));

        Assert.Equal(ErrorCodes.ImageReferenceInvalid, error.Code);
        Assert.Contains(reason, error.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("quay.io/a/b:-bad")]
    [InlineData("quay.io/a/b:.bad")]
    [InlineData("quay.io/a/b:bad!")]
    public void Parse_RejectsInvalidTagsWithTagCode(string text)
    {
        Assert.Equal(ErrorCodes.TagInvalid, Assert.Throws<VddkException>(() => ImageReference.Parse(text)).Code);
    }

    [Fact]
    public void ValidateTag_AcceptsUpTo128Characters()
    {
        ImageReference.ValidateTag(new string('a', 128));
        Assert.Equal(ErrorCodes.TagInvalid, Assert.Throws<VddkException>(() => ImageReference.ValidateTag(new string('a', 129))).Code);
        Assert.Equal(ErrorCodes.TagInvalid, Assert.Throws<VddkException>(() => ImageReference.ValidateTag("")).Code);
    }

    [Theory]
    [InlineData("myregistry:5000", "openshift-mtv/vddk", "myregistry:5000")]
    [InlineData("localhost", "vddk", "localhost")]
    [InlineData("docker.io", "vddk", "docker.io")]
    [InlineData("default-route-openshift-image-registry.apps.x.example", "openshift-mtv/vddk", "default-route-openshift-image-registry.apps.x.example")]
    public void ForRepository_AcceptsSingleWordHosts(string registry, string repository, string expected)
    {
        var reference = ImageReference.ForRepository(registry, repository);

        Assert.Equal(expected, reference.Registry);
        Assert.EndsWith(repository, reference.Repository);
    }

    [Theory]
    [InlineData("https://r.example", "a")]
    [InlineData("r.example/path", "a")]
    [InlineData("r.example", "A")]
    public void ForRepository_RejectsSchemesPathsAndUppercase(string registry, string repository)
    {
        Assert.Equal(ErrorCodes.ImageReferenceInvalid, Assert.Throws<VddkException>(() => ImageReference.ForRepository(registry, repository)).Code);
    }

    [Fact]
    public void HostName_StripsPortAndBrackets()
    {
        Assert.Equal("::1", ImageReference.Parse("[::1]:5000/a").HostName);
        Assert.Equal("quay.io", ImageReference.Parse("quay.io:443/a").HostName);
    }
}
