using VddkBuild.Oci;
using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class UploadLocationTests
{
    private static readonly Uri Post = new("https://r.example:5000/v2/a/b/blobs/uploads/");
    private static readonly Digest Blob = Digest.Compute("x"u8);

    [Theory]
    [InlineData("/v2/a/b/blobs/uploads/uuid-1?_state=abc%3D%3D", "https://r.example:5000/v2/a/b/blobs/uploads/uuid-1?_state=abc%3D%3D")]
    [InlineData("uuid-2", "https://r.example:5000/v2/a/b/blobs/uploads/uuid-2")]
    [InlineData("https://storage.example/upload/xyz?sig=1", "https://storage.example/upload/xyz?sig=1")]
    [InlineData("http://r.example:5000/v2/a/b/blobs/uploads/u", "http://r.example:5000/v2/a/b/blobs/uploads/u")]
    public void Resolve_HandlesRelativeAndAbsoluteLocations(string location, string expected)
    {
        Assert.Equal(expected, UploadLocation.Resolve(Post, location).AbsoluteUri);
    }

    /// <summary>A Location that cannot go on a request line as it is (a space, non-ASCII) is escaped, not sent raw.</summary>
    [Theory]
    [InlineData("/v2/a/b/blobs/uploads/u 1?name=café", "/v2/a/b/blobs/uploads/u%201?name=caf%C3%A9")]
    [InlineData("https://storage.example/up load?sig=a%7Eb", "/up%20load?sig=a~b")]
    public void Resolve_LocationWithSpacesOrNonAscii_IsEscaped(string location, string expectedPathAndQuery)
    {
        Assert.Equal(expectedPathAndQuery, UploadLocation.Resolve(Post, location).PathAndQuery);
    }

    [Fact]
    public void Resolve_WithoutLocation_FailsWithResponseInvalid()
    {
        Assert.Equal(ErrorCodes.RegistryResponseInvalid, Assert.Throws<VddkException>(() => UploadLocation.Resolve(Post, " ")).Code);
    }

    [Fact]
    public void WithDigest_AppendsToAnExistingQueryKeepingItExactly()
    {
        var location = UploadLocation.Resolve(Post, "/v2/a/b/blobs/uploads/u?_state=abc%2Bdef%3D");

        var withDigest = UploadLocation.WithDigest(location, Blob);

        Assert.Equal($"https://r.example:5000/v2/a/b/blobs/uploads/u?_state=abc%2Bdef%3D&digest=sha256%3A{Blob.Hex}", withDigest.AbsoluteUri);
    }

    [Fact]
    public void WithDigest_StartsAQueryWhenThereIsNone()
    {
        var withDigest = UploadLocation.WithDigest(new Uri("https://r.example/v2/a/blobs/uploads/u"), Blob);

        Assert.Equal($"https://r.example/v2/a/blobs/uploads/u?digest=sha256%3A{Blob.Hex}", withDigest.AbsoluteUri);
    }

    [Theory]
    [InlineData("/v2/a/b/blobs/uploads/u?X-Amz-Signature=a%7Eb%2Fc&_state=x%3D", "/v2/a/b/blobs/uploads/u?X-Amz-Signature=a%7Eb%2Fc&_state=x%3D&digest=sha256%3A")]
    [InlineData("https://storage.example/up%7E/x?sig=%7E", "/up%7E/x?sig=%7E&digest=sha256%3A")]
    [InlineData("/v2/a/blobs/uploads/u?", "/v2/a/blobs/uploads/u?digest=sha256%3A")]
    [InlineData("/v2/a/blobs/uploads/u?_state=x%7E#fragment", "/v2/a/blobs/uploads/u?_state=x%7E&digest=sha256%3A")]
    [InlineData("https://storage.example/u#only-fragment", "/u?digest=sha256%3A")]
    public void Location_IsSentBackByteForByte(string location, string expectedPrefix)
    {
        var withDigest = UploadLocation.WithDigest(UploadLocation.Resolve(Post, location), Blob);

        Assert.Equal(expectedPrefix + Blob.Hex, withDigest.PathAndQuery);
    }

    [Fact]
    public void Resolve_RefusesANonHttpLocation()
    {
        Assert.Equal(ErrorCodes.RegistryResponseInvalid, Assert.Throws<VddkException>(() => UploadLocation.Resolve(Post, "file:///etc/passwd")).Code);
    }
}
