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
            await OciArchiveWriter.WriteAsync(result.Image, baseSource, archivePath, tags, cancellationToken).ConfigureAwait(false);
            ImageArchiveWritten = archivePath;
            ImageArchiveTag = tags[0];
            Announce($"VddkBuild: {Describe(result)} -> {archivePath}");
            Announce($"VddkBuild: image digest {ImageDigest} (tags: {string.Join(", ", tags)})");
        }
    }
}
