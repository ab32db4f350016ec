using System.Runtime.CompilerServices;
using Microsoft.Build.Framework;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Threading;

namespace VddkBuild.Tasks;

/// <summary>Unpacks the VDDK archive with symlinks, hardlinks and modes intact (target ExtractVddk).</summary>
public sealed class ExtractVddkArchive : VddkTask
{
    public string? Archive { get; set; }
    [Required] public string ExtractDirectory { get; set; } = string.Empty;
    public string? MaxEntrySize { get; set; }
    public string? MaxTotalSize { get; set; }
    public string? MaxEntryCount { get; set; }
    public string? AddSoname8Link { get; set; }

    [Output] public string? Version { get; private set; }
    [Output] public string? BuildNumber { get; private set; }
    [Output] public string? ExtractedDirectory { get; private set; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    protected override async Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        var archive = ArchivePath(TaskProperties.Required(Archive, "VddkArchive",
            "Pass the VDDK tarball: dotnet build -t:ExtractVddk -p:VddkArchive=/path/to/VMware-vix-disklib-<version>.x86_64.tar.gz"), log);
        var target = Path.GetFullPath(ExtractDirectory);
        var contents = await VddkExtraction.ExtractAsync(archive, target, VddkImageTask.ArchiveOptions(MaxEntrySize, MaxTotalSize, MaxEntryCount, AddSoname8Link), log, cancellationToken).ConfigureAwait(false);
        Version = contents.Version;
        BuildNumber = contents.BuildNumber ?? string.Empty;
        ExtractedDirectory = target;
        Announce($"VddkBuild: VDDK {contents.Version} extracted to {target} ({contents.Entries.Count} entries, symlinks intact)");
    }
}
