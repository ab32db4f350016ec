using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// The same image as a Docker image manifest v2, schema 2 (what registries that refuse OCI manifests take, and what
/// <c>skopeo copy --format v2s2</c> writes): the config and every layer are the same bytes under the same digests,
/// only their media types change; annotations, which schema 2 does not have, are dropped. The manifest, and so the
/// image digest, differs from the OCI one. Pure: same image, same bytes.
/// </summary>
public static class DockerImageConversion
{
    public const string DockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";

    /// <summary>
    /// Throws what <see cref="ToDocker"/> would throw because of the base (a layer schema 2 cannot describe), so a
    /// build that must write that format refuses the base before it publishes anything.
    /// </summary>
    public static void CheckBase(SourceImage baseImage)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        foreach (var layer in baseImage.Layers)
        {
            _ = ToDockerLayer(layer);
        }
    }

    public static BuiltImage ToDocker(BuiltImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.ManifestDescriptor.MediaType == MediaTypes.DockerManifest)
        {
            return image;
        }
        var config = image.ConfigDescriptor with { MediaType = MediaTypes.DockerConfig, Annotations = null, Urls = null, Platform = null };
        var manifest = new ImageManifest
        {
            SchemaVersion = 2,
            MediaType = MediaTypes.DockerManifest,
            Config = config,
            Layers = [.. image.Layers.Select(ToDockerLayer)],
        };
        var manifestBytes = OciJson.Serialize(manifest);
        var manifestDescriptor = new Descriptor { MediaType = MediaTypes.DockerManifest, Digest = Digest.Compute(manifestBytes), Size = manifestBytes.Length };
        return image with { ConfigDescriptor = config, ManifestDescriptor = manifestDescriptor, ManifestBytes = manifestBytes };
    }

    /// <summary>
    /// A layer descriptor as schema 2 names it: gzip and plain tar layers get Docker's types, non-distributable ones
    /// become foreign layers with their URLs (as containers/image converts them). zstd has no schema 2 type.
    /// </summary>
    public static Descriptor ToDockerLayer(Descriptor layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var mediaType = layer.MediaType switch
        {
            MediaTypes.OciLayerGzip or MediaTypes.DockerLayerGzip => MediaTypes.DockerLayerGzip,
            MediaTypes.OciLayerTar or DockerLayerTar => DockerLayerTar,
            MediaTypes.DockerForeignLayerGzip or "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => MediaTypes.DockerForeignLayerGzip,
            "application/vnd.oci.image.layer.nondistributable.v1.tar" => "application/vnd.docker.image.rootfs.foreign.diff.tar",
            _ => throw new VddkException(ErrorCodes.MediaTypeUnsupported,
                $"Layer {layer.Digest} has media type '{layer.MediaType}', which a Docker image manifest (schema 2) cannot describe, so the image cannot be written in the Docker format. "
                + "Set VddkImageFormat=OCI for a registry that accepts OCI manifests, or choose a base image whose layers are gzip-compressed tar.",
                layer.Digest.Value),
        };
        return new Descriptor { MediaType = mediaType, Digest = layer.Digest, Size = layer.Size, Urls = layer.Urls };
    }
}
