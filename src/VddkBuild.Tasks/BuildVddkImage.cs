using Microsoft.Build.Framework;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Publishing;

namespace VddkBuild.Tasks;

/// <summary>VDDK archive + base image -> OCI image archive on disk (target BuildVddkImage).</summary>
public sealed class BuildVddkImage : VddkTask
{
    public string? Archive { get; set; }
    public string? BaseImage { get; set; }
    public string? Platform { get; set; }
    public string? User { get; set; }
    public string? ImageTags { get; set; }
    public string? ImageArchive { get; set; }
    [Required] public string OutputDirectory { get; set; } = string.Empty;
    [Required] public string IntermediateDirectory { get; set; } = string.Empty;
    public string? SourceDateEpoch { get; set; }
    public ITaskItem[] Labels { get; set; } = [];
    public string? MaxEntrySize { get; set; }
    public string? MaxTotalSize { get; set; }
    public string? MaxEntryCount { get; set; }

    [Output] public string? Version { get; private set; }
    [Output] public string? BuildNumber { get; private set; }
    [Output] public string? ImageDigest { get; private set; }
    [Output] public string? ImageArchiveWritten { get; private set; }

    protected override async Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        var options = TaskInputs.ImageRequestOptions(this);
        await using var baseSource = ImageSourceFactory.Create(TaskProperties.Required(BaseImage, "VddkBaseImage", "Set it to a registry reference, oci:DIR[:tag] or oci-archive:FILE[:tag]."));
        var request = options with { BaseSource = baseSource };
        var result = await VddkImagePipeline.BuildAsync(request, log, cancellationToken).ConfigureAwait(false);

        var version = result.Archive.Version;
        var tags = TaskProperties.List(ImageTags);
        if (tags.Count == 0)
        {
            tags = [version];
        }
        var archivePath = string.IsNullOrWhiteSpace(ImageArchive)
            ? Path.Combine(OutputDirectory, $"vddk-{version}.oci.tar")
            : Path.GetFullPath(ImageArchive);
        await OciArchiveWriter.WriteAsync(result.Image, baseSource, archivePath, tags, cancellationToken).ConfigureAwait(false);

        Version = version;
        BuildNumber = result.Archive.BuildNumber ?? string.Empty;
        ImageDigest = result.Image.Digest.Value;
        ImageArchiveWritten = archivePath;
        Announce($"VddkBuild: VDDK {version}{(result.Archive.BuildNumber is { } b ? $" build {b}" : string.Empty)} -> {archivePath}");
        Announce($"VddkBuild: image digest {ImageDigest} (tags: {string.Join(", ", tags)})");
    }
}
