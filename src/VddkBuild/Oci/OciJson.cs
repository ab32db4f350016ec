using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace VddkBuild.Oci;

/// <summary>
/// The one place JSON for OCI documents is read and written. Output is compact, in declaration order, with
/// no HTML escaping: the same object always gives the same bytes, so the same digest.
/// </summary>
public static class OciJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        ReadCommentHandling = JsonCommentHandling.Disallow,
        PropertyNameCaseInsensitive = false,
        // Generated metadata for the OCI types; reflection only for anything else.
        TypeInfoResolver = JsonTypeInfoResolver.Combine(OciJsonContext.Default, new DefaultJsonTypeInfoResolver()),
    };

    public static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Options);

    /// <summary>Parses an OCI document; malformed input throws VDDK3010 naming <paramref name="what"/>.</summary>
    public static T Deserialize<T>(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options)
                ?? throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"{what} is empty (JSON null).", what);
        }
        catch (JsonException ex)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"{what} is not valid JSON for its media type: {ex.Message}", what, ex);
        }
    }
}
