using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>One blob an image sink must store, and how to open it (verified against its descriptor when read to the end).</summary>
internal sealed record ImageBlob(Descriptor Descriptor, Func<CancellationToken, Task<Stream>> OpenAsync, bool MayBeAbsent)
{
    public string RelativePath => OciLayoutResolver.BlobPath(Descriptor.Digest);

    /// <summary>Every blob of <paramref name="image"/>, each digest once, ordered by path so sinks write them alike.</summary>
    public static IReadOnlyList<ImageBlob> Of(BuiltImage image, IImageSource baseSource)
    {
        var blobs = new Dictionary<Digest, ImageBlob>();
        foreach (var layer in image.Base.Layers)
        {
            // Foreign / non-distributable layers are fetched from their URLs by whoever runs the image; a source
            // that does not hold them is normal.
            bool foreign = layer.MediaType == MediaTypes.DockerForeignLayerGzip || layer.MediaType.Contains(".nondistributable.", StringComparison.Ordinal);
            blobs.TryAdd(layer.Digest, new ImageBlob(layer, ct => baseSource.OpenBlobAsync(layer, ct), foreign));
        }
        var vddk = image.VddkLayer;
        blobs.TryAdd(vddk.Descriptor.Digest, new ImageBlob(vddk.Descriptor, _ => Task.FromResult(OpenLayerFile(vddk)), false));
        blobs.TryAdd(image.ConfigDescriptor.Digest, InMemory(image.ConfigDescriptor, image.ConfigBytes));
        blobs.TryAdd(image.ManifestDescriptor.Digest, InMemory(image.ManifestDescriptor, image.ManifestBytes));
        return [.. blobs.Values.OrderBy(b => b.RelativePath, StringComparer.Ordinal)];
    }

    private static ImageBlob InMemory(Descriptor descriptor, byte[] bytes) =>
        new(descriptor, _ => Task.FromResult<Stream>(new MemoryStream(bytes, writable: false)), false);

    private static Stream OpenLayerFile(LayerBlob layer)
    {
        try
        {
            var file = new FileStream(layer.FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return new DigestVerifyingStream(file, layer.Descriptor, layer.FilePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"The VDDK layer file '{layer.FilePath}' cannot be read: {VddkException.Reason(ex)}. Build the image again.", layer.FilePath, ex);
        }
    }
}
