using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Images;

/// <summary>
/// Resolves <c>[:tag]</c> in an OCI image layout (folder or archive) to one single-platform image: checks
/// <c>oci-layout</c>, reads <c>index.json</c>, matches the tag via <c>org.opencontainers.image.ref.name</c>,
/// follows nested indexes with <see cref="PlatformSelector"/>, and verifies every manifest and config it reads.
/// </summary>
internal sealed class OciLayoutResolver
{
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    // distribution-spec lets registries refuse manifests above 4 MiB; configs of real images are far below 8 MiB.
    private const long MaxManifestSize = 4 << 20;
    private const long MaxConfigSize = 8 << 20;

    private readonly IOciLayoutFiles _files;
    private readonly string _displayName;

    public OciLayoutResolver(IOciLayoutFiles files, string displayName)
    {
        _files = files;
        _displayName = displayName;
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<SourceImage> ResolveAsync(string? tag, Platform platform, CancellationToken ct)
    {
        await CheckLayoutVersionAsync(ct).ConfigureAwait(false);
        var indexBytes = await ReadFileAsync("index.json", MaxManifestSize, ct).ConfigureAwait(false);
        var index = Parse<ImageIndex>(indexBytes, "index.json");
        if (index.Manifests is null)
        {
            throw Invalid("index.json has no \"manifests\" list");
        }

        var chosen = Choose(index, tag, platform);
        return await ResolveDescriptorAsync(chosen, platform, depth: 0, ct).ConfigureAwait(false);
    }

    /// <summary>Opens a blob of the layout, verifying size and digest when read to the end.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken ct)
    {
        var stream = await _files.TryOpenAsync(BlobPath(descriptor.Digest), ct).ConfigureAwait(false)
            ?? throw new VddkException(ErrorCodes.BaseImageNotFound,
                $"Blob {descriptor.Digest} is missing from '{_displayName}'. The layout is incomplete; copy the image again (skopeo copy).", descriptor.Digest.Value);
        return new DigestVerifyingStream(stream, descriptor, _displayName);
    }

    public static string BlobPath(Digest digest) => $"blobs/{digest.Algorithm}/{digest.Hex}";

    private Descriptor Choose(ImageIndex index, string? tag, Platform platform)
    {
        var manifests = index.Manifests;
        if (tag is not null)
        {
            var tagged = manifests.Where(d => TagOf(d) == tag || (Digest.TryParse(tag, out var digest) && d.Digest == digest)).ToList();
            if (tagged.Count == 0)
            {
                var tags = manifests.Select(TagOf).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
                throw new VddkException(ErrorCodes.BaseImageNotFound,
                    $"'{_displayName}' has no image tagged '{tag}'; tags present: {(tags.Count == 0 ? "none" : string.Join(", ", tags))}.",
                    _displayName);
            }
            // Several descriptors with one name (per-platform entries some tools write) are chosen from like an index.
            return tagged.Count == 1 || tagged.All(d => d.Digest == tagged[0].Digest)
                ? tagged[0]
                : PlatformSelector.Select(new ImageIndex { Manifests = tagged }, platform, _displayName);
        }
        if (manifests.Count == 1)
        {
            return manifests[0];
        }
        if (manifests.Count > 1 && manifests.All(d => d.Platform is not null))
        {
            return PlatformSelector.Select(index, platform, _displayName);
        }
        var names = manifests.Select(TagOf).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        throw new VddkException(ErrorCodes.BaseReferenceInvalid,
            manifests.Count == 0
                ? $"'{_displayName}' holds no image (index.json lists no manifests)."
                : $"'{_displayName}' holds {manifests.Count} images; name one with :tag. Tags present: {(names.Count == 0 ? "none" : string.Join(", ", names))}.",
            _displayName);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<SourceImage> ResolveDescriptorAsync(Descriptor descriptor, Platform platform, int depth, CancellationToken ct)
    {
        if (MediaTypes.IsIndex(descriptor.MediaType))
        {
            if (depth >= BaseManifestCheck.MaxIndexDepth)
            {
                throw Invalid($"indexes are nested more than {BaseManifestCheck.MaxIndexDepth} deep");
            }
            var nested = Parse<ImageIndex>(await ReadBlobAsync(descriptor, MaxManifestSize, ct).ConfigureAwait(false), $"index {descriptor.Digest}");
            if (nested.Manifests is null)
            {
                throw Invalid($"index {descriptor.Digest} has no \"manifests\" list");
            }
            var chosen = PlatformSelector.Select(nested, platform, _displayName);
            return await ResolveDescriptorAsync(chosen, platform, depth + 1, ct).ConfigureAwait(false);
        }
        BaseManifestCheck.EnsureSupportedManifest(descriptor.MediaType, descriptor.Digest, _displayName);

        var manifestBytes = await ReadBlobAsync(descriptor, MaxManifestSize, ct).ConfigureAwait(false);
        var manifest = Parse<ImageManifest>(manifestBytes, $"manifest {descriptor.Digest}");
        if (manifest.MediaType is not null && manifest.MediaType != descriptor.MediaType)
        {
            BaseManifestCheck.EnsureSupportedManifest(manifest.MediaType, descriptor.Digest, _displayName);
        }
        BaseManifestCheck.EnsureImageManifest(manifest, descriptor.Digest, _displayName);

        var configBytes = await ReadBlobAsync(manifest.Config, MaxConfigSize, ct).ConfigureAwait(false);
        BaseManifestCheck.EnsureConfigPlatform(configBytes, manifest.Config.Digest, platform, _displayName, Invalid);

        var manifestDescriptor = new Descriptor { MediaType = descriptor.MediaType, Digest = descriptor.Digest, Size = descriptor.Size, Platform = descriptor.Platform };
        return new SourceImage(manifestDescriptor, manifestBytes, manifest, configBytes);
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private async Task CheckLayoutVersionAsync(CancellationToken ct)
    {
        byte[] bytes;
        try
        {
            bytes = await ReadFileAsync("oci-layout", 64 * 1024, ct).ConfigureAwait(false);
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.BaseImageNotFound)
        {
            // docker save before Docker 25 (and podman save's default format) writes manifest.json and no OCI layout.
            var dockerArchive = await _files.TryOpenAsync("manifest.json", ct).ConfigureAwait(false);
            if (dockerArchive is not null)
            {
                await dockerArchive.DisposeAsync().ConfigureAwait(false);
                throw new VddkException(ErrorCodes.BaseImageNotFound,
                    $"'{_displayName}' is a docker save (docker-archive) image, not an OCI image layout (it has manifest.json but no oci-layout file). "
                    + "Convert it: skopeo copy docker-archive:FILE oci-archive:BASE.oci.tar (or podman save --format oci-archive), and use oci-archive:BASE.oci.tar.", _displayName, ex);
            }
            throw new VddkException(ErrorCodes.BaseImageNotFound,
                $"'{_displayName}' is not an OCI image layout (no oci-layout file). Create one with skopeo copy docker://IMAGE oci:DIR:TAG.", _displayName, ex);
        }
        string? version;
        try
        {
            version = (JsonNode.Parse(bytes) as JsonObject)?["imageLayoutVersion"]?.GetValue<string>();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            throw Invalid($"oci-layout is not valid JSON ({ex.Message})");
        }
        if (version is null || !version.StartsWith("1.", StringComparison.Ordinal))
        {
            throw Invalid($"oci-layout states imageLayoutVersion '{version ?? "(none)"}', but only 1.x layouts are supported");
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<byte[]> ReadFileAsync(string relativePath, long maxSize, CancellationToken ct)
    {
        var stream = await _files.TryOpenAsync(relativePath, ct).ConfigureAwait(false)
            ?? throw new VddkException(ErrorCodes.BaseImageNotFound,
                $"'{_displayName}' has no {relativePath}. Check the path; an OCI layout holds oci-layout, index.json and blobs/.", _displayName);
        await using var _ = stream.ConfigureAwait(false);
        if (stream.Length > maxSize)
        {
            throw Invalid($"{relativePath} is {stream.Length} bytes, more than the {maxSize} allowed");
        }
        var bytes = new byte[stream.Length];
        await stream.ReadExactlyAsync(bytes, ct).ConfigureAwait(false);
        return bytes;
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<byte[]> ReadBlobAsync(Descriptor descriptor, long maxSize, CancellationToken ct)
    {
        if (descriptor.Size < 0 || descriptor.Size > maxSize)
        {
            throw Invalid($"{descriptor.Digest} is declared as {descriptor.Size} bytes, outside 0..{maxSize}");
        }
        await using var stream = await OpenBlobAsync(descriptor, ct).ConfigureAwait(false);
        var bytes = new byte[descriptor.Size];
        await stream.ReadAtLeastAsync(bytes, bytes.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        // Reading on to the end makes the stream compare size and digest with the descriptor (VDDK2006).
        await stream.ReadAsync(new byte[1], ct).ConfigureAwait(false);
        return bytes;
    }

    private T Parse<T>(byte[] json, string what)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, OciJson.Options) ?? throw Invalid($"{what} is JSON null");
        }
        catch (JsonException ex)
        {
            throw Invalid($"{what} is not valid JSON for its media type ({ex.Message})");
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.RegistryResponseInvalid)
        {
            throw Invalid($"{what}: {ex.Message}");
        }
    }

    private static string? TagOf(Descriptor descriptor) =>
        descriptor.Annotations is { } a && a.TryGetValue(RefNameAnnotation, out var name) ? name : null;

    private VddkException Invalid(string why) =>
        new(ErrorCodes.ImageLayoutInvalid, $"'{_displayName}' is not a valid OCI image layout: {why}. Re-create it with skopeo copy.", _displayName);
}
