using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// A single-platform image as a source delivered it: the manifest's exact bytes (its digest is what the source
/// named), the parsed manifest, and the config's exact bytes.
/// </summary>
public sealed record SourceImage(
    Descriptor ManifestDescriptor,
    byte[] ManifestBytes,
    ImageManifest Manifest,
    byte[] ConfigBytes)
{
    public IReadOnlyList<Descriptor> Layers => Manifest.Layers;
}
