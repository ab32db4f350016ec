using System.Runtime.CompilerServices;
using Microsoft.Build.Framework;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Threading;

namespace VddkBuild.Tasks;

/// <summary>VDDK archive + base image -> OCI image archive on disk (target BuildVddkImage).</summary>
public sealed class BuildVddkImage : VddkImageTask
{
    public string? ImageArchive { get; set; }
    [Required] public string OutputDirectory { get; set; } = string.Empty;

    [Output] public string? ImageArchiveWritten { get; private set; }

    /// <summary>The first tag in the archive's index.json: with several, readers need one (oci-archive:FILE:TAG).</summary>
    [Output] public string? ImageArchiveTag { get; private set; }

    /// <summary>How skopeo and podman name the image in the archive: <c>oci-archive:FILE:TAG</c>, or <c>oci-archive:FILE</c> (see below).</summary>
    [Output] public string? ImageArchiveReference { get; private set; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    protected override async Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        using var registry = OpenRegistrySession(log, []);
        var (result, baseSource, tags) = await BuildImageAsync(registry, log, cancellationToken).ConfigureAwait(false);
        await using (baseSource.ConfigureAwait(false))
        {
            var archivePath = string.IsNullOrWhiteSpace(ImageArchive)
                ? Path.Combine(Path.GetFullPath(OutputDirectory), $"vddk-{result.Archive.Version}.oci.tar")
                : Path.GetFullPath(ImageArchive);
            await OciArchiveWriter.WriteAsync(result.Image, baseSource, archivePath, tags, cancellationToken, log).ConfigureAwait(false);
            ImageArchiveWritten = archivePath;
            ImageArchiveTag = tags[0];
            // containers/image as Debian 12 ships it (skopeo 1.9) looks a tag up in index.json among OCI entries only, so
            // a Docker schema 2 image there is found by the archive's name alone, which works while it holds one entry.
            ImageArchiveReference = result.Image.ManifestDescriptor.MediaType == Oci.MediaTypes.DockerManifest && tags.Count == 1
                ? $"oci-archive:{archivePath}"
                : $"oci-archive:{archivePath}:{tags[0]}";
            Announce($"VddkBuild: {Describe(result)} -> {archivePath}");
            Announce($"VddkBuild: image digest {ImageDigest} (tags: {string.Join(", ", tags)})");
        }
    }
}
