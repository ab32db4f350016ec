namespace VddkBuild.Images;

/// <summary>The manifest format an image is written in (VddkImageFormat). The blobs are the same in both.</summary>
public enum ImageFormat
{
    /// <summary>OCI image manifest, OCI config and layer media types, with annotations.</summary>
    Oci,

    /// <summary>Docker image manifest v2, schema 2: for registries that refuse OCI manifests. No annotations.</summary>
    Docker,
}
