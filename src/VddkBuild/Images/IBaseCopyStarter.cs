namespace VddkBuild.Images;

/// <summary>
/// Starts copying a base image's layers to where the image goes while the VDDK layer is still being made (a registry
/// push does, see <c>Registry.EarlyBaseCopy</c>), so that the copy overlaps the archive's reading instead of
/// following it. It only sends bytes: nothing becomes a blob until the pusher commits it, after the layer and the
/// image passed every check.
/// </summary>
public interface IBaseCopyStarter
{
    /// <summary>
    /// <paramref name="baseImage"/>, resolved from <paramref name="source"/>, passed the checks a base must pass: its
    /// layers may be sent now.
    /// </summary>
    void Begin(SourceImage baseImage, IImageSource source);
}
