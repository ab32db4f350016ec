using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// Where a base image comes from: an OCI layout directory (<c>oci:DIR[:tag]</c>), an OCI archive
/// (<c>oci-archive:FILE[:tag]</c>) or a registry. Sources are interchangeable for the builder and the sinks.
/// </summary>
public interface IImageSource : IAsyncDisposable
{
    /// <summary>The reference as the user wrote it, for messages.</summary>
    string DisplayName { get; }

    /// <summary>
    /// Resolves the reference to one image. An index is narrowed to <paramref name="platform"/>; none matching
    /// throws VDDK2003 listing the platforms the index offers.
    /// </summary>
    Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken);

    /// <summary>Opens a blob for streaming. The stream verifies size and digest when read to the end (VDDK2006).</summary>
    Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken cancellationToken);
}
