using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// The finished VDDK image: base layers (fetched from <see cref="Base"/>'s source), the VDDK layer (a local file),
/// and the exact config and manifest bytes whose digests are final. Sinks (OCI archive, registry) write it.
/// </summary>
public sealed record BuiltImage(
    SourceImage Base,
    LayerBlob VddkLayer,
    Descriptor ConfigDescriptor,
    byte[] ConfigBytes,
    Descriptor ManifestDescriptor,
    byte[] ManifestBytes)
{
    public Digest Digest => ManifestDescriptor.Digest;

    /// <summary>All layers in order: the base's, then the VDDK layer.</summary>
    public IReadOnlyList<Descriptor> Layers => [.. Base.Layers, VddkLayer.Descriptor];
}
