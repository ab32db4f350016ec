using System.Security.Cryptography;
using VddkBuild.Oci;

namespace VddkBuild.Tests.Oci;

public sealed class DigestVerifyingStreamTests
{
    private static readonly byte[] Content = [.. Enumerable.Range(0, 100_000).Select(i => (byte)(i * 7))];

    private static Descriptor For(byte[] bytes) => new() { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Compute(bytes), Size = bytes.Length };

    [Fact]
    public async Task Intact_content_reads_through_unchanged()
    {
        await using var stream = new DigestVerifyingStream(new MemoryStream(Content), For(Content), "test");
        var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(Content, copy.ToArray());
    }

    [Fact]
    public async Task Changed_content_fails_at_the_end_with_VDDK2006()
    {
        var tampered = (byte[])Content.Clone();
        tampered[50_000] ^= 1;
        await using var stream = new DigestVerifyingStream(new MemoryStream(tampered), For(Content), "oci:/x");
        var ex = await Assert.ThrowsAsync<VddkException>(() => stream.CopyToAsync(Stream.Null));
        Assert.Equal(ErrorCodes.BlobDigestMismatch, ex.Code);
        Assert.Contains("oci:/x", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Short_and_long_content_fail_with_VDDK2006()
    {
        using var shorter = new DigestVerifyingStream(new MemoryStream(Content[..^1]), For(Content), "t");
        Assert.Equal(ErrorCodes.BlobDigestMismatch, Assert.Throws<VddkException>(() => shorter.CopyTo(Stream.Null)).Code);

        using var longer = new DigestVerifyingStream(new MemoryStream([.. Content, 0]), For(Content), "t");
        Assert.Equal(ErrorCodes.BlobDigestMismatch, Assert.Throws<VddkException>(() => longer.CopyTo(Stream.Null)).Code);
    }

    [Fact]
    public async Task Sha512_digests_are_verified_too()
    {
        var descriptor = new Descriptor { MediaType = "x", Digest = Digest.Parse("sha512:" + Convert.ToHexStringLower(SHA512.HashData(Content))), Size = Content.Length };
        await using var stream = new DigestVerifyingStream(new MemoryStream(Content), descriptor, "t");
        await stream.CopyToAsync(Stream.Null);
    }
}
