using System.Text.Json;
using System.Text.Json.Nodes;
using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// What every image source (layout, archive, registry) checks on the one manifest and config it resolved to, so that
/// a base is accepted or refused alike wherever it comes from: an image manifest of a supported media type and schema,
/// a container config, and a config whose os/architecture is the platform asked for (an index can lie, a single
/// manifest states no platform at all: only the config says what the image's binaries are).
/// </summary>
internal static class BaseManifestCheck
{
    /// <summary>How deep indexes may nest (an index entry that is itself an index) before the base is refused.</summary>
    public const int MaxIndexDepth = 4;

    /// <summary>Throws VDDK2005 unless <paramref name="mediaType"/> is an OCI or Docker schema 2 image manifest.</summary>
    public static void EnsureSupportedManifest(string? mediaType, Digest digest, string displayName)
    {
        if (MediaTypes.IsManifest(mediaType))
        {
            return;
        }
        var hint = mediaType is not null && mediaType.StartsWith("application/vnd.docker.distribution.manifest.v1", StringComparison.Ordinal)
            ? "Docker schema 1 images are obsolete; convert it with skopeo copy --format v2s2 or --format oci, or use a current base image."
            : "Use an OCI or Docker schema 2 image manifest as the base.";
        throw new VddkException(ErrorCodes.MediaTypeUnsupported,
            $"Manifest {digest} of '{displayName}' has media type '{mediaType ?? "(none)"}', which is not supported. {hint}", digest.Value);
    }

    /// <summary>Throws VDDK2005 unless the parsed manifest is a schema 2 image manifest whose config is a container config.</summary>
    public static void EnsureImageManifest(ImageManifest manifest, Digest digest, string displayName)
    {
        if (manifest.SchemaVersion != 2 || manifest.Config is null || manifest.Layers is null)
        {
            throw new VddkException(ErrorCodes.MediaTypeUnsupported,
                $"Manifest {digest} of '{displayName}' is not a schema 2 image manifest. Convert the base image with skopeo copy --format oci.", digest.Value);
        }
        if (manifest.Config.MediaType is not (MediaTypes.OciConfig or MediaTypes.DockerConfig))
        {
            throw new VddkException(ErrorCodes.MediaTypeUnsupported,
                $"'{displayName}' is not a container image: its config has media type '{manifest.Config.MediaType}'. Choose a container base image such as ubi9/ubi-minimal.", digest.Value);
        }
    }

    /// <summary>
    /// Throws VDDK2003 when the config's os/architecture is not <paramref name="requested"/>, and the exception
    /// <paramref name="invalid"/> makes when the config states no os or architecture or is not JSON.
    /// </summary>
    public static void EnsureConfigPlatform(byte[] configBytes, Digest configDigest, Platform requested, string displayName, Func<string, VddkException> invalid) =>
        PlatformSelector.EnsureMatches(ConfigPlatform(configBytes, configDigest, invalid), requested, displayName);

    private static Platform ConfigPlatform(byte[] configBytes, Digest digest, Func<string, VddkException> invalid)
    {
        try
        {
            var config = JsonNode.Parse(configBytes) as JsonObject ?? throw invalid($"config {digest} is not a JSON object");
            return new Platform
            {
                Os = NonEmpty(config["os"]?.GetValue<string>()) ?? throw invalid($"config {digest} states no \"os\""),
                Architecture = NonEmpty(config["architecture"]?.GetValue<string>()) ?? throw invalid($"config {digest} states no \"architecture\""),
                Variant = NonEmpty(config["variant"]?.GetValue<string>()),
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw invalid($"config {digest} is not valid JSON: {ex.Message}");
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
