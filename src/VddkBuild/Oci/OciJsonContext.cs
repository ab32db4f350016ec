using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace VddkBuild.Oci;

/// <summary>
/// Compile-time JSON metadata for the OCI documents: a build reads and writes a handful of them once, so building
/// that metadata by reflection at run time would cost more than the work itself (about 70 ms at the first manifest).
/// </summary>
[JsonSerializable(typeof(ImageManifest))]
[JsonSerializable(typeof(ImageIndex))]
[JsonSerializable(typeof(Descriptor))]
[JsonSerializable(typeof(JsonObject))]
internal sealed partial class OciJsonContext : JsonSerializerContext
{
}
