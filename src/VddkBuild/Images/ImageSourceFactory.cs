namespace VddkBuild.Images;

/// <summary>Creates the <see cref="IImageSource"/> a base image reference names.</summary>
public static class ImageSourceFactory
{
    /// <param name="reference">oci:DIR[:tag], oci-archive:FILE[:tag] or a registry reference.</param>
    /// <param name="registrySource">Creates registry sources; without it a registry reference fails with VDDK2009.</param>
    public static IImageSource Create(ImageSourceReference reference, Func<ImageSourceReference, IImageSource>? registrySource = null)
    {
        ArgumentNullException.ThrowIfNull(reference);
        return reference.Kind switch
        {
            ImageSourceKind.OciLayout => new OciLayoutSource(reference.Path!, reference.Tag, reference.Raw),
            ImageSourceKind.OciArchive => new OciArchiveSource(reference.Path!, reference.Tag, reference.Raw),
            _ => registrySource?.Invoke(reference) ?? throw new VddkException(ErrorCodes.BaseNeedsRegistry,
                $"Base image '{reference.Raw}' is a registry reference, which needs the registry client. Pull it through the registry, "
                + "or give a local copy as oci:DIR[:tag] or oci-archive:FILE[:tag] (skopeo copy docker://IMAGE oci-archive:FILE).", reference.Raw),
        };
    }

    public static IImageSource Create(string reference, Func<ImageSourceReference, IImageSource>? registrySource = null) =>
        Create(ImageSourceReference.Parse(reference), registrySource);
}
