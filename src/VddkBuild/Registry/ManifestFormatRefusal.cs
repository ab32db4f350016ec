using System.Net;
using System.Text.Json;

namespace VddkBuild.Registry;

/// <summary>
/// Whether a registry's answer to a manifest PUT means "I do not take manifests of this format", the way registries
/// that predate OCI (or have it switched off) say so, as opposed to a manifest refused for its content. The shapes:
/// <list type="bullet">
/// <item>415 Unsupported Media Type, whatever the body (Quay: <c>MANIFEST_INVALID</c> "manifest schema version not
/// supported"; proxies and registries with a media-type allow list answer 415 alone).</item>
/// <item><c>MANIFEST_INVALID</c> (distribution before OCI support: "unsupported manifest media type"; OpenShift's
/// registry; Quay with OCI support switched off; Artifactory, Nexus) and <c>TAG_INVALID</c> (distribution 2.0/2.1,
/// which read any manifest as schema 1 and found no tag in it): what containers/image and Jib take as a rejected
/// format.</item>
/// <item><c>UNSUPPORTED</c> and <c>MANIFEST_UNSUPPORTED</c> (AWS ECR's "Invalid JSON syntax" before its OCI
/// support; registries that answer an unknown media type as an unsupported operation).</item>
/// </list>
/// A manifest refused because of its content (a blob the registry lacks, a bad digest or size, an unknown repository),
/// authentication, or a server error is never a format refusal, even when such a code comes along with one of the above.
/// </summary>
public static class ManifestFormatRefusal
{
    private static readonly HashSet<string> FormatCodes = new(StringComparer.Ordinal)
    {
        "MANIFEST_INVALID", "TAG_INVALID", "UNSUPPORTED", "MANIFEST_UNSUPPORTED",
    };

    private static readonly HashSet<string> ContentCodes = new(StringComparer.Ordinal)
    {
        "MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "SIZE_INVALID", "MANIFEST_UNVERIFIED",
        "NAME_INVALID", "NAME_UNKNOWN", "MANIFEST_UNKNOWN", "UNAUTHORIZED", "DENIED", "TOOMANYREQUESTS", "UNAVAILABLE",
    };

    public static bool IsFormatRefusal(HttpStatusCode status, ReadOnlySpan<byte> body)
    {
        var code = (int)status;
        if (code is < 400 or >= 500 or 401 or 403 or 404 or 408 or 429)
        {
            return false;
        }
        var codes = ErrorCodes(body);
        if (codes.Any(ContentCodes.Contains))
        {
            return false;
        }
        return status == HttpStatusCode.UnsupportedMediaType || codes.Any(FormatCodes.Contains);
    }

    /// <summary>The first error's <c>detail</c> (a string, or an object's <c>message</c>), shortened; null when there is none.</summary>
    public static string? Detail(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return null;
        }
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("errors", out var errors) || errors.ValueKind != JsonValueKind.Array
                || errors.GetArrayLength() == 0 || errors[0].ValueKind != JsonValueKind.Object || !errors[0].TryGetProperty("detail", out var detail))
            {
                return null;
            }
            var text = detail.ValueKind switch
            {
                JsonValueKind.String => detail.GetString(),
                JsonValueKind.Object when detail.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String => m.GetString(),
                JsonValueKind.Object when detail.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String => d.GetString(),
                _ => null,
            };
            if (string.IsNullOrWhiteSpace(text))
            {
                return null;
            }
            return RegistryErrorResponse.Excerpt(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// What a <c>TAG_INVALID</c> refusal may also mean, for the message: registries with immutable tags (AWS ECR with
    /// tag immutability, Harbor's immutability rules) refuse to move an existing tag with that code, in any format.
    /// Empty for other answers; otherwise a clause that continues the refusal's sentence.
    /// </summary>
    public static string TagHint(ReadOnlySpan<byte> body) => ErrorCodes(body).Contains("TAG_INVALID")
        ? "; TAG_INVALID also means that the tag already exists in a repository whose tags are immutable (AWS ECR with tag immutability, Harbor's immutability rules), which no manifest format changes: then push another tag (VddkImageTags) or allow the tag to be overwritten"
        : string.Empty;

    /// <summary>The <c>errors[].code</c> values of a distribution-spec error body; none when it is not one.</summary>
    internal static IReadOnlyList<string> ErrorCodes(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return [];
        }
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("errors", out var errors) || errors.ValueKind != JsonValueKind.Array)
            {
                return [];
            }
            return [.. errors.EnumerateArray()
                .Select(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()!.Trim().ToUpperInvariant() : null)
                .OfType<string>()];
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
