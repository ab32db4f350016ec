using VddkBuild.Images;

namespace VddkBuild.Registry;

/// <summary>Choices for one push.</summary>
public sealed record PushOptions
{
    /// <summary>Blobs uploaded at once (clamped to 1..16).</summary>
    public int MaxParallelUploads { get; init; } = 3;

    /// <summary>Pushing to a well-known public registry is refused unless this is true (VddkAllowPublicRegistry).</summary>
    public bool AllowPublicRegistry { get; init; }

    /// <summary>Size of PATCH chunks when the registry refuses monolithic uploads (raised to its OCI-Chunk-Min-Length).</summary>
    public long ChunkSize { get; init; } = 16 * 1024 * 1024;

    /// <summary>Always upload in chunks (for registries or proxies that cap request bodies).</summary>
    public bool ForceChunkedUpload { get; init; }

    /// <summary>Try cross-repository mounts when the base comes from the same registry.</summary>
    public bool AllowMount { get; init; } = true;

    /// <summary>
    /// The manifest format chosen (VddkImageFormat), never changed; null is automatic: the image as built (OCI), sent
    /// once more as Docker schema 2 when the registry refuses the OCI manifest (see <see cref="ImagePusher"/>).
    /// </summary>
    public ImageFormat? ImageFormat { get; init; }
}
