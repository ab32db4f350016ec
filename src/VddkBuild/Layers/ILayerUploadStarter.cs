using VddkBuild.IO;
using VddkBuild.Oci;

namespace VddkBuild.Layers;

/// <summary>
/// Sends a candidate layer somewhere while it is still being written and checked (a registry push does, see
/// <c>Registry.EarlyLayerUpload</c>), so that the transfer overlaps the archive's reading instead of following it.
/// It only ever sends bytes: whoever pushes the image later decides, from the layer's final descriptor, whether
/// the bytes sent become that layer's blob.
/// </summary>
public interface ILayerUploadStarter
{
    /// <summary>
    /// The candidate is being written to <paramref name="file"/>; if it qualifies it will be <paramref name="length"/>
    /// bytes, with the digest <paramref name="expectedDigest"/> gives, where the archive is hashed beforehand (null
    /// when it is not, or hashing failed).
    /// </summary>
    void Begin(GrowingFile file, long length, Task<Digest?> expectedDigest);

    /// <summary>The candidate will not be the layer: stop sending it and keep nothing of it.</summary>
    void Abandon(string reason);
}
