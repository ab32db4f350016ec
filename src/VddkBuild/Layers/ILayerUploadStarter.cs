using VddkBuild.IO;
using VddkBuild.Oci;

namespace VddkBuild.Layers;

/// <summary>
/// Sends a candidate layer somewhere while it is still being written and checked (a registry push does, see
/// <c>Registry.EarlyLayerUpload</c>), so that the transfer overlaps the archive's reading instead of following it.
/// It only sends bytes until the layer is final: the bytes become a blob once the layer has passed every check
/// (<see cref="Ready"/>) or when the pusher commits them, never for a candidate that was refused.
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

    /// <summary>
    /// The candidate passed every check, the base is known, and it is published locally as the layer
    /// <paramref name="layer"/>: the bytes sent may become that blob now, while the image is assembled, instead of
    /// when the pusher gets to it (it then only collects the outcome).
    /// </summary>
    void Ready(Descriptor layer);
}
