using VddkBuild.Archive;
using VddkBuild.Images;
using VddkBuild.Layers;
using VddkBuild.Oci;

namespace VddkBuild.Publishing;

/// <summary>Everything needed to turn a VDDK archive and a base image into the VDDK init image.</summary>
public sealed record VddkImageRequest
{
    public required string ArchivePath { get; init; }

    public required IImageSource BaseSource { get; init; }

    public Platform Platform { get; init; } = Platform.LinuxAmd64;

    public string User { get; init; } = "1001";

    /// <summary>SOURCE_DATE_EPOCH: entry mtimes and the created time are clamped to it.</summary>
    public DateTimeOffset? SourceDateEpoch { get; init; }

    /// <summary>Folder for the layer blob (content-addressed; reused by later runs).</summary>
    public required string WorkDirectory { get; init; }

    public VddkArchiveReadOptions ArchiveOptions { get; init; } = new();

    /// <summary>
    /// Reuse the layer an earlier build made from the same archive bytes and settings (kept under
    /// <see cref="WorkDirectory"/>/layer-cache); a warm build then neither reads nor recompresses the archive.
    /// </summary>
    public bool UseLayerCache { get; init; } = true;

    /// <summary>
    /// Use the archive file itself as the layer when it already is a correct one (see
    /// <see cref="VerbatimLayerCheck"/>): no recompression, and a digest every machine reproduces.
    /// </summary>
    public bool UseArchiveAsLayer { get; init; } = true;

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// The manifest format (VddkImageFormat); null builds the OCI form, which a push may still send as Docker schema 2
    /// when the registry refuses OCI.
    /// </summary>
    public ImageFormat? Format { get; init; }

    /// <summary>
    /// Starts sending the layer while the archive is still being checked, when the archive itself becomes the layer
    /// (a push passes its <see cref="Registry.EarlyLayerUpload"/>; nothing is committed until the push).
    /// </summary>
    public ILayerUploadStarter? LayerUpload { get; init; }

    /// <summary>
    /// Starts copying the base's layers as soon as the base is resolved and usable, while the archive is still read
    /// (a push to another registry than the base's passes its <see cref="Registry.EarlyBaseCopy"/>; nothing is
    /// committed until the push).
    /// </summary>
    public IBaseCopyStarter? BaseCopy { get; init; }
}

/// <summary>The archive's facts and the finished image (its VDDK layer is a file under the work directory).</summary>
public sealed record VddkImageBuildResult(VddkArchiveContents Archive, BuiltImage Image)
{
    /// <summary>
    /// Completes when what lets the next build skip work (layer cache entry, archive digest memo) is written; that
    /// happens in the background while the image is pushed. Await it before the process may end. Never faults.
    /// </summary>
    public Task Recorded { get; init; } = Task.CompletedTask;
}
