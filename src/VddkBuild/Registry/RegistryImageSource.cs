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

    public RegistryImageSource(RegistrySession session, ImageReference reference, string? displayName = null)
    {
        Reference = reference;
        DisplayName = displayName ?? reference.ToString();
        _client = session.GetClient(reference);
    }

    public ImageReference Reference { get; }

    public string DisplayName { get; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken)
    {
        var top = await GetManifestAsync(Reference.ManifestReference, cancellationToken).ConfigureAwait(false);
        var mediaType = MediaTypeOf(top);
        var manifestResponse = top;
        if (MediaTypes.IsIndex(mediaType))
        {
            var index = OciJson.Deserialize<ImageIndex>(top.Bytes, $"the index of {DisplayName}");
            var chosen = PlatformSelector.Select(index, platform, DisplayName);
            manifestResponse = await GetManifestAsync(chosen.Digest.Value, cancellationToken).ConfigureAwait(false);
            if (manifestResponse.Bytes.LongLength != chosen.Size)
            {
                throw new VddkException(ErrorCodes.BlobDigestMismatch,
                    $"The {platform} manifest of {DisplayName} is {manifestResponse.Bytes.LongLength} bytes; its index states {chosen.Size}.", DisplayName);
            }
            mediaType = MediaTypeOf(manifestResponse);
        }
        if (!MediaTypes.IsManifest(mediaType))
        {
            throw new VddkException(ErrorCodes.MediaTypeUnsupported,
                $"The base image {DisplayName} is of media type '{mediaType ?? "(none)"}', which is not an OCI or Docker v2 image manifest or index.", DisplayName);
        }
        var manifest = OciJson.Deserialize<ImageManifest>(manifestResponse.Bytes, $"the manifest of {DisplayName}");
        var descriptor = new Descriptor { MediaType = mediaType!, Digest = manifestResponse.Digest, Size = manifestResponse.Bytes.LongLength };
        if (manifest.Config.Size > RegistryClient.MaxBufferedResponse)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"The config of {DisplayName} claims {manifest.Config.Size} bytes, more than an image config can sensibly be.", DisplayName);
        }
        var config = await _client.ReadBlobAsync(Reference.Repository, manifest.Config, cancellationToken).ConfigureAwait(false);
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

    /// <summary>The document's own mediaType wins; the Content-Type header is the fallback (older Docker manifests).</summary>
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
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"The registry returned a manifest for the base image that is not JSON ({ex.Message}).", response.Digest.Value, ex);
        }
        return response.ContentType;
    }
}
