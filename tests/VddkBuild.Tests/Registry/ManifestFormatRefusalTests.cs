using System.Net;
using System.Text;
using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

/// <summary>Which answers to a manifest PUT mean "this manifest format is not taken" (shapes real registries send).</summary>
public sealed class ManifestFormatRefusalTests
{
    public static TheoryData<string, int, string> FormatRefusals => new()
    {
        { "distribution before OCI", 400, """{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported manifest media type and no default available: application/vnd.oci.image.manifest.v1+json"}]}""" },
        { "distribution 2.2", 400, """{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}""" },
        { "distribution 2.0/2.1", 400, """{"errors":[{"code":"TAG_INVALID","message":"manifest tag did not match URI"}]}""" },
        { "Quay", 415, """{"errors":[{"code":"MANIFEST_INVALID","detail":{"message":"manifest schema version not supported"},"message":"manifest invalid"}]}""" },
        { "bare 415", 415, "" },
        { "415 with text", 415, "Unsupported Media Type" },
        { "AWS ECR before OCI", 400, """{"errors":[{"code":"UNSUPPORTED","message":"Invalid JSON syntax"}]}""" },
        { "lower-case code", 400, """{"errors":[{"code":"manifest_invalid","message":"manifest invalid"}]}""" },
    };

    public static TheoryData<string, int, string> OtherRefusals => new()
    {
        { "blob missing", 400, """{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:aa"}]}""" },
        { "blob missing with manifest invalid", 400, """{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}""" },
        { "digest", 400, """{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}""" },
        { "size", 400, """{"errors":[{"code":"SIZE_INVALID","message":"manifest too large"}]}""" },
        { "400 without code", 400, """{"errors":[]}""" },
        { "400 text", 400, "Bad Request" },
        { "auth", 401, """{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}""" },
        { "denied", 403, """{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}""" },
        { "repository missing", 404, """{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}""" },
        { "server error with manifest invalid", 500, """{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}""" },
        { "unavailable", 503, """{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}""" },
        { "too many requests", 429, """{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}""" },
    };

    [Theory]
    [MemberData(nameof(FormatRefusals))]
    public void Format_refusals_are_recognised(string registry, int status, string body) =>
        Assert.True(ManifestFormatRefusal.IsFormatRefusal((HttpStatusCode)status, Encoding.UTF8.GetBytes(body)), registry);

    [Theory]
    [MemberData(nameof(OtherRefusals))]
    public void Other_refusals_are_not_format_refusals(string why, int status, string body) =>
        Assert.False(ManifestFormatRefusal.IsFormatRefusal((HttpStatusCode)status, Encoding.UTF8.GetBytes(body)), why);

    [Fact]
    public void TAG_INVALID_gets_the_immutable_tag_hint_and_other_refusals_none()
    {
        Assert.Contains("push another tag (VddkImageTags)",
            ManifestFormatRefusal.TagHint("""{"errors":[{"code":"TAG_INVALID","message":"The image tag '8.0.1' already exists"}]}"""u8));
        Assert.Equal(string.Empty, ManifestFormatRefusal.TagHint("""{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"""u8));
        Assert.Equal(string.Empty, ManifestFormatRefusal.TagHint("not json"u8));
    }

    [Fact]
    public void The_detail_is_read_from_a_string_or_an_object()
    {
        Assert.Equal("manifest schema version not supported",
            ManifestFormatRefusal.Detail("""{"errors":[{"code":"MANIFEST_INVALID","detail":{"message":"manifest schema version not supported"},"message":"manifest invalid"}]}"""u8));
        Assert.Equal("unsupported manifest media type",
            ManifestFormatRefusal.Detail("""{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported manifest media type"}]}"""u8));
        Assert.Null(ManifestFormatRefusal.Detail("""{"errors":[{"code":"MANIFEST_INVALID","detail":{}}]}"""u8));
        Assert.Null(ManifestFormatRefusal.Detail("not json"u8));
    }
}
