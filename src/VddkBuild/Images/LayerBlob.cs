using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>A layer made by this project, held in a local file.</summary>
/// <param name="FilePath">The compressed layer blob on disk (complete, under its final name).</param>
/// <param name="Descriptor">Media type, digest (sha256 of the file) and size.</param>
/// <param name="DiffId">sha256 of the uncompressed tar, for the config's rootfs.diff_ids.</param>
public sealed record LayerBlob(string FilePath, Descriptor Descriptor, Digest DiffId);
