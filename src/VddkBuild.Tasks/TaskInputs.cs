using VddkBuild.Archive;
using VddkBuild.Oci;
using VddkBuild.Publishing;

namespace VddkBuild.Tasks;

/// <summary>Binds the task properties shared by the image-building tasks to engine requests.</summary>
internal static class TaskInputs
{
    public static VddkArchiveReadOptions ArchiveOptions(string? maxEntrySize, string? maxTotalSize, string? maxEntryCount)
    {
        var defaults = new VddkArchiveReadOptions();
        return defaults with
        {
            MaxEntryBytes = TaskProperties.Size(maxEntrySize, "VddkMaxEntrySize", defaults.MaxEntryBytes),
            MaxTotalBytes = TaskProperties.Size(maxTotalSize, "VddkMaxTotalSize", defaults.MaxTotalBytes),
            MaxEntryCount = TaskProperties.Count(maxEntryCount, "VddkMaxEntryCount", defaults.MaxEntryCount),
        };
    }

    /// <summary>The request without its base source, which the caller opens and owns.</summary>
    public static VddkImageRequest ImageRequestOptions(BuildVddkImage task)
    {
        var archive = TaskProperties.Required(task.Archive, "VddkArchive",
            "Pass the VDDK tarball: dotnet build -t:PublishVddk -p:VddkArchive=/path/to/VMware-vix-disklib-<version>.x86_64.tar.gz");
        return new VddkImageRequest
        {
            ArchivePath = Path.GetFullPath(archive),
            BaseSource = null!,
            Platform = string.IsNullOrWhiteSpace(task.Platform) ? Platform.LinuxAmd64 : Platform.Parse(task.Platform),
            User = string.IsNullOrWhiteSpace(task.User) ? "1001" : task.User.Trim(),
            SourceDateEpoch = TaskProperties.Epoch(task.SourceDateEpoch, "VddkSourceDateEpoch (SOURCE_DATE_EPOCH)"),
            WorkDirectory = Path.GetFullPath(task.IntermediateDirectory),
            ArchiveOptions = ArchiveOptions(task.MaxEntrySize, task.MaxTotalSize, task.MaxEntryCount),
            Labels = task.Labels.ToDictionary(l => l.ItemSpec, l => l.GetMetadata("Value"), StringComparer.Ordinal),
        };
    }
}
