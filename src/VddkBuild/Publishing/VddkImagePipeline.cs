using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Layers;

namespace VddkBuild.Publishing;

/// <summary>
/// archive entries -> layer -> image. The archive is read once, straight into the layer writer, while the base image
/// is resolved at the same time; nothing is published under a final name until every check has passed.
/// </summary>
public static class VddkImagePipeline
{
    public static async Task<VddkImageBuildResult> BuildAsync(VddkImageRequest request, IBuildLog log, CancellationToken cancellationToken)
    {
        if (!File.Exists(request.ArchivePath))
        {
            throw new VddkException(ErrorCodes.ArchiveNotFound,
                $"The VDDK archive '{request.ArchivePath}' does not exist. Download VMware-vix-disklib-<version>.x86_64.tar.gz from the Broadcom developer portal and set VddkArchive to its path.",
                request.ArchivePath);
        }

        var layerDirectory = Path.Combine(request.WorkDirectory, "layers");
        Directory.CreateDirectory(layerDirectory);

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var baseTask = request.BaseSource.ResolveAsync(request.Platform, linked.Token);
        VddkArchiveContents contents;
        LayerBlob layer;
        SourceImage baseImage;
        try
        {
            await using var writer = new LayerWriter(layerDirectory, new LayerWriterOptions { SourceDateEpoch = request.SourceDateEpoch });
            contents = await new VddkArchiveReader(request.ArchivePath, request.ArchiveOptions, log).ReadAsync(writer, linked.Token).ConfigureAwait(false);
            // The layer is published only once the base is known to be usable: a bad base (unknown platform, a
            // broken registry answer) leaves nothing behind, like every other failure.
            baseImage = await baseTask.ConfigureAwait(false);
            layer = await writer.CompleteAsync(linked.Token).ConfigureAwait(false);
        }
        catch
        {
            // The first error is the one to report; stop resolving the base and observe its outcome.
            await linked.CancelAsync().ConfigureAwait(false);
            try { await baseTask.ConfigureAwait(false); } catch { /* superseded by the error being thrown */ }
            throw;
        }

        log.Detail($"VDDK layer {layer.Descriptor.Digest} ({layer.Descriptor.Size} bytes, diffID {layer.DiffId}).");

        var created = request.SourceDateEpoch is { } epoch && epoch < contents.NewestModificationTime ? epoch : contents.NewestModificationTime;
        var settings = new ImageSettings
        {
            User = request.User,
            VddkVersion = contents.Version,
            VddkBuildNumber = contents.BuildNumber,
            Created = created,
            Labels = request.Labels,
        };
        return new VddkImageBuildResult(contents, ImageBuilder.Build(baseImage, layer, settings));
    }
}
