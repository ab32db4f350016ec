using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VddkBuild.Diagnostics;
using VddkBuild.IO;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// What VddkArchive must name before anything reads it: an existing, readable regular file. The archive is read more
/// than once (its sha256 for the layer cache, the checked reading, the gzip check), so a FIFO, /dev/stdin fed by a
/// pipe or a device such as /dev/zero could only block a build forever or feed it endless bytes; they are refused
/// here, before a thread or a temporary file exists. Opening a FIFO for reading would itself block, so the kind is
/// taken from stat(2), never from an open.
/// </summary>
public static class VddkArchiveFile
{
    /// <summary>
    /// The full path of VddkArchive as a user means it: <c>~/...</c> under HOME (no shell expands it inside
    /// <c>-p:VddkArchive=~/...</c> or a .proj); a relative path from the project's folder, as MSBuild resolves every
    /// path, or else, when nothing is there but the file is in the directory the build was started from (a CI script
    /// running <c>dotnet build deploy/vddk.proj -p:VddkArchive=downloads/vddk.tar.gz</c> from the repository's root),
    /// from there, saying so.
    /// </summary>
    /// <param name="startupDirectory">MSBuildStartupDirectory: where dotnet build was started.</param>
    /// <param name="home">HOME, for <c>~</c>.</param>
    public static string Resolve(string value, string projectDirectory, string? startupDirectory, string? home, IBuildLog log)
    {
        ArgumentException.ThrowIfNullOrEmpty(value);
        ArgumentNullException.ThrowIfNull(log);
        if (!string.IsNullOrEmpty(home) && (value == "~" || value.StartsWith("~/", StringComparison.Ordinal)))
        {
            return Path.GetFullPath(home + value[1..]);
        }
        if (Path.IsPathRooted(value))
        {
            return Path.GetFullPath(value);
        }
        var fromProject = Path.GetFullPath(value, projectDirectory);
        if (string.IsNullOrEmpty(startupDirectory) || Exists(fromProject))
        {
            return fromProject;
        }
        var fromStartup = Path.GetFullPath(value, startupDirectory);
        if (fromStartup != fromProject && Exists(fromStartup))
        {
            log.Info($"VddkArchive '{value}' is not in the project's folder '{projectDirectory}'; using '{fromStartup}', relative to the directory the build was started from.");
            return fromStartup;
        }
        return fromProject;

        static bool Exists(string path) => File.Exists(path) || Directory.Exists(path) || FileKind.IsSymlink(path);
    }

    /// <summary>Throws the coded error for a path that is not a readable regular file (VDDK1001, VDDK1018, VDDK1019).</summary>
    public static void Check(string archivePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        var kind = FileKind.Of(archivePath);
        switch (kind.Type)
        {
            case FileKindType.Regular:
            case FileKindType.Unknown when File.Exists(archivePath):
                break;
            case FileKindType.Directory:
            case FileKindType.Unknown when Directory.Exists(archivePath):
                throw new VddkException(ErrorCodes.ArchiveNotFound,
                    $"VddkArchive '{archivePath}' is a directory, not a VDDK archive. Set VddkArchive to the path of the downloaded VMware-vix-disklib-<version>.x86_64.tar.gz file itself.",
                    archivePath);
            case FileKindType.Fifo or FileKindType.CharacterDevice or FileKindType.BlockDevice or FileKindType.Socket:
                throw new VddkException(ErrorCodes.ArchiveNotAFile,
                    $"VddkArchive '{archivePath}' is {kind.Describe()}, not a file. The archive is read more than once (its sha256, the checks, the layer), so it must be a regular file: save the download first (e.g. curl -o vddk.tar.gz ...) and set VddkArchive to that file.",
                    archivePath);
            case FileKindType.Failed when kind.Errno == FileKind.Eloop:
                throw new VddkException(ErrorCodes.ArchiveUnreadable,
                    $"The VDDK archive '{archivePath}' cannot be opened: its symbolic links form a loop (or a chain of more than 40). Point VddkArchive at the file itself (readlink -f shows where the links go).",
                    archivePath);
            case FileKindType.Failed when kind.Errno == FileKind.Eacces:
                throw new VddkException(ErrorCodes.ArchiveUnreadable,
                    $"The VDDK archive '{archivePath}' cannot be opened: a folder on its path may not be entered by the user this build runs as (permission denied). Give that user access (chmod o+x on the folders, or run as the owner), or copy the archive to a folder it can read.",
                    archivePath);
            case FileKindType.Failed when kind.Errno == FileKind.Enotdir:
                throw new VddkException(ErrorCodes.ArchiveNotFound,
                    $"The VDDK archive '{archivePath}' does not exist: a part of its path is a file, not a folder. Set VddkArchive to the path of the downloaded VMware-vix-disklib-<version>.x86_64.tar.gz.",
                    archivePath);
            case FileKindType.Failed when kind.Errno != FileKind.Enoent:
                throw new VddkException(ErrorCodes.ArchiveUnreadable,
                    $"The VDDK archive '{archivePath}' cannot be opened: {Marshal.GetPInvokeErrorMessage(kind.Errno)}. Check the path and the file system it is on.",
                    archivePath);
            default:
                throw NotFound(archivePath);
        }

        try
        {
            File.OpenHandle(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read).Dispose();
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw NotFound(archivePath);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw Unreadable(archivePath, ex);
        }
        catch (IOException ex)
        {
            throw Unreadable(archivePath, ex);
        }
    }

    /// <summary>
    /// Runs a reading of the archive. When it fails on the archive's content (truncated, not a VDDK, a missing
    /// library) while the file changed under it - a download or copy still in progress, a file being replaced - the
    /// error is VDDK1020 saying so, not a "corrupt archive, download it again" about bytes that were not final.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<T> ReadWhileUnchangedAsync<T>(string archivePath, Func<Task<T>> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        var before = Layers.FileIdentity.TryRead(archivePath);
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (VddkException ex) when (IsAboutContent(ex.Code) && before is not null && Layers.FileIdentity.TryRead(archivePath) != before)
        {
            var now = Layers.FileIdentity.TryRead(archivePath);
            var how = now is null ? "was removed or replaced"
                : now.Value.Size == before.Value.Size ? "was rewritten"
                : $"went from {before.Value.Size} to {now.Value.Size} bytes";
            throw new VddkException(ErrorCodes.ArchiveChanged,
                $"The VDDK archive '{archivePath}' changed while it was read (it {how}): a download or copy still in progress? Wait until it is complete (or download to another name and rename it when done) and build again. What the reading found: {ex.Message}",
                archivePath, ex);
        }

        static bool IsAboutContent(string code) => code is ErrorCodes.ArchiveCorrupt or ErrorCodes.ArchiveFormatUnsupported or ErrorCodes.NotAVddk
            or ErrorCodes.VixDiskLibMissing or ErrorCodes.VixDiskLibChainBroken or ErrorCodes.HardlinkInvalid or ErrorCodes.ArchiveUnreadable;
    }

    /// <summary>VDDK1019 for an archive that exists but cannot be opened or read (permissions, I/O errors of the file system).</summary>
    public static VddkException Unreadable(string archivePath, Exception ex) => new(ErrorCodes.ArchiveUnreadable,
        ex is UnauthorizedAccessException
            ? $"The VDDK archive '{archivePath}' cannot be read: permission denied for the user this build runs as. Make it readable (chmod a+r '{archivePath}'), or copy it to a folder of that user."
            : $"The VDDK archive '{archivePath}' cannot be read: {VddkException.Reason(ex)}. Check the file system it is on, or copy the archive to a local folder.",
        archivePath, ex);

    private static VddkException NotFound(string archivePath)
    {
        var link = FileKind.IsSymlink(archivePath) ? new FileInfo(archivePath).LinkTarget : null;
        return new VddkException(ErrorCodes.ArchiveNotFound,
            link is not null
                ? $"The VDDK archive '{archivePath}' is a symbolic link to '{link}', which does not exist. Point the link (or VddkArchive) at the downloaded VMware-vix-disklib-<version>.x86_64.tar.gz."
                : $"The VDDK archive '{archivePath}' does not exist. Download VMware-vix-disklib-<version>.x86_64.tar.gz from the Broadcom developer portal and set VddkArchive to its path "
                  + "(a relative path is taken from the project's folder, or else from the directory the build was started from; MSBuild expands %XX, $(...) and @(...) and splits at ';' in a property, so write %25, %24, %40 and %3B for those characters of a file name).",
            archivePath);
    }
}
