using System.Runtime.CompilerServices;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// A base image in a registry: resolves the reference (an index narrowed to the requested platform), reads the
/// config, and streams layers. Everything read is checked against its digest.
/// </summary>
public sealed class RegistryImageSource : IImageSource
{
    private readonly RegistryClient _client;
    private readonly bool _disconnectedHint;

    /// <param name="disconnectedHint">
    /// Whether an unreachable registry's error says how to give the base another way (a mirror, an oci-archive copy):
    /// false for a registries.conf mirror, whose failure is one line of the error the last source gives.
    /// </param>
    public RegistryImageSource(RegistrySession session, ImageReference reference, string? displayName = null, bool disconnectedHint = true)
    {
        _disconnectedHint = disconnectedHint;
        Reference = reference;
        DisplayName = displayName ?? reference.ToString();
        _client = session.GetClient(reference);
    }

    public ImageReference Reference { get; }

    public string DisplayName { get; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken)
    {
        ManifestResponse manifestResponse;
        try
        {
            manifestResponse = await GetManifestAsync(Reference.ManifestReference, cancellationToken).ConfigureAwait(false);
        }
        catch (VddkException unreachable) when (unreachable.Code == ErrorCodes.RegistryUnreachable && _disconnectedHint)
        {
            // Usually a machine without internet access (a disconnected cluster's bastion, a closed CI network) and the
            // default base on registry.access.redhat.com: say how to give the base another way.
            throw new VddkException(ErrorCodes.RegistryUnreachable,
                $"{unreachable.Message} The base image {DisplayName} comes from VddkBaseImage. Where its registry cannot be reached (a disconnected network), "
                + $"set VddkBaseImage to a mirror registry that holds it, or to a copy made on a connected machine: skopeo copy docker://{Reference} oci-archive:base.oci.tar, "
                + "then -p:VddkBaseImage=oci-archive:base.oci.tar. Or name a mirror for it in registries.conf ([[registry.mirror]], as podman reads it; see VddkRegistriesConf).",
                unreachable.Subject, unreachable);
        }
        var mediaType = MediaTypeOf(manifestResponse);
        // An index entry may itself be an index (nested indexes, as OCI layouts and some mirrors hold them).
        for (var depth = 0; MediaTypes.IsIndex(mediaType); depth++)
        {
            if (depth >= BaseManifestCheck.MaxIndexDepth)
            {
                throw Invalid($"its indexes are nested more than {BaseManifestCheck.MaxIndexDepth} deep", manifestResponse.Digest);
            }
            var index = OciJson.Deserialize<ImageIndex>(manifestResponse.Bytes, $"the index {manifestResponse.Digest} of {DisplayName}");
            if (index.Manifests is null)
            {
                throw Invalid($"index {manifestResponse.Digest} has no \"manifests\" list", manifestResponse.Digest);
            }
            var chosen = PlatformSelector.Select(index, platform, DisplayName);
            manifestResponse = await GetManifestAsync(chosen.Digest.Value, cancellationToken).ConfigureAwait(false);
            if (manifestResponse.Bytes.LongLength != chosen.Size)
            {
                throw new VddkException(ErrorCodes.BlobDigestMismatch,
                    $"The {platform} manifest of {DisplayName} is {manifestResponse.Bytes.LongLength} bytes; its index states {chosen.Size}.", DisplayName);
            }
            mediaType = MediaTypeOf(manifestResponse);
        }
        BaseManifestCheck.EnsureSupportedManifest(mediaType, manifestResponse.Digest, DisplayName);
        var manifest = OciJson.Deserialize<ImageManifest>(manifestResponse.Bytes, $"the manifest of {DisplayName}");
        BaseManifestCheck.EnsureImageManifest(manifest, manifestResponse.Digest, DisplayName);
        var descriptor = new Descriptor { MediaType = mediaType!, Digest = manifestResponse.Digest, Size = manifestResponse.Bytes.LongLength };
        if (manifest.Config.Size > RegistryClient.MaxBufferedResponse)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"The config of {DisplayName} claims {manifest.Config.Size} bytes, more than an image config can sensibly be.", DisplayName);
        }
        var config = await _client.ReadBlobAsync(Reference.Repository, manifest.Config, cancellationToken).ConfigureAwait(false);
        // The config, not the index entry (which a single manifest does not even have), says what platform the image is.
        BaseManifestCheck.EnsureConfigPlatform(config, manifest.Config.Digest, platform, DisplayName, why => Invalid(why, manifestResponse.Digest));
        return new SourceImage(descriptor, manifestResponse.Bytes, manifest, config);
    }

    public Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        _client.OpenBlobAsync(Reference.Repository, descriptor, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<ManifestResponse> GetManifestAsync(string reference, CancellationToken cancellationToken) =>
        await _client.GetManifestAsync(Reference.Repository, reference, RegistryPurpose.Pull, cancellationToken).ConfigureAwait(false)
        ?? throw new VddkException(ErrorCodes.BaseImageNotFound,
            $"The base image {DisplayName} was not found: registry {Reference.Registry} has no manifest '{reference}' in repository '{Reference.Repository}'. Check the name and tag.",
            DisplayName);

    /// <summary>
    /// The document's own mediaType wins; then the Content-Type header (older Docker manifests), unless it names no
    /// manifest type and the document's shape does.
    /// </summary>
    private static string? MediaTypeOf(ManifestResponse response)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(response.Bytes);
            if (document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && document.RootElement.TryGetProperty("mediaType", out var mt) && mt.ValueKind == System.Text.Json.JsonValueKind.String)
            {
                return mt.GetString();
            }
            if (document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object && document.RootElement.TryGetProperty("manifests", out _))
            {
                return response.ContentType is { } ct && MediaTypes.IsIndex(ct) ? ct : MediaTypes.OciIndex;
            }
            // An image manifest without mediaType (allowed before image-spec 1.0.2) served without a manifest
            // Content-Type (application/json, octet-stream, none: static or proxied registries): its shape and its
            // config's type tell, as containers/image guesses it.
            if (document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && !MediaTypes.IsManifest(response.ContentType) && !MediaTypes.IsIndex(response.ContentType)
                && document.RootElement.TryGetProperty("schemaVersion", out var version) && version.ValueKind == System.Text.Json.JsonValueKind.Number && version.TryGetInt32(out var schema) && schema == 2
                && document.RootElement.TryGetProperty("config", out var config) && config.ValueKind == System.Text.Json.JsonValueKind.Object
                && document.RootElement.TryGetProperty("layers", out _))
            {
                return config.TryGetProperty("mediaType", out var configType) && configType.ValueKind == System.Text.Json.JsonValueKind.String
                    && configType.GetString() == MediaTypes.DockerConfig
                    ? MediaTypes.DockerManifest
                    : MediaTypes.OciManifest;
            }
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"The registry returned a manifest for the base image that is not JSON ({ex.Message}).", response.Digest.Value, ex);
        }
        return response.ContentType;
    }

    private VddkException Invalid(string why, Digest digest) =>
        new(ErrorCodes.ImageLayoutInvalid, $"The base image {DisplayName} cannot be used: {why}. Choose an intact container base image.", digest.Value);
}
