using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.IO;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// Unpacks a VDDK archive the way the image will hold it, for users who want the tree on disk (inspection, other
/// tools). All or nothing: the tree is written to a temporary folder next to the target and renamed into place only
/// after every check passed; on any error or cancellation the temporary folder is removed and an existing target
/// is left as it was.
/// </summary>
public static class VddkExtraction
{
    /// <summary>
    /// Extracts <paramref name="archivePath"/> so that <paramref name="targetDirectory"/> holds
    /// <c>vmware-vix-disklib-distrib/</c> (like <c>tar -xzf ARCHIVE -C TARGET</c>). An existing target is replaced,
    /// but only when it is empty or holds nothing but a previous <c>vmware-vix-disklib-distrib/</c>.
    /// </summary>
    public static Task<VddkArchiveContents> ExtractAsync(string archivePath, string targetDirectory, VddkArchiveReadOptions options, IBuildLog log, CancellationToken cancellationToken) =>
        ExtractAsync(archivePath, targetDirectory, options, log, File.CreateSymbolicLink, cancellationToken);

    /// <param name="createSymlink">How the symlink probe creates its link; tests simulate file systems without symlinks.</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal static async Task<VddkArchiveContents> ExtractAsync(string archivePath, string targetDirectory, VddkArchiveReadOptions options, IBuildLog log, Func<string, string, FileSystemInfo> createSymlink, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetDirectory);
        ArgumentNullException.ThrowIfNull(log);
        var target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(targetDirectory));
        try
        {
            // A link to the folder (on a mounted volume, say) gets the tree; replacing the link itself would leave that folder empty.
            target = OutputPath.FollowSymlink(target);
        }
        catch (IOException ex)
        {
            throw new VddkException(ErrorCodes.ExtractFailed, $"Cannot extract the VDDK to '{target}': it is a symbolic link that cannot be followed ({VddkException.Reason(ex)}). Point it at a folder, or set VddkExtractDirectory to another path.", target, ex);
        }
        var parent = Path.GetDirectoryName(target)
            ?? throw new VddkException(ErrorCodes.ExtractFailed, $"Cannot extract the VDDK into the file-system root '{target}'; choose a dedicated folder.", target);
        VddkArchiveFile.Check(Path.GetFullPath(archivePath));
        CheckReplaceable(target);

        // An existing folder is worked in from inside: it may be a mount point (a pod's volume, where renaming the
        // folder itself is EBUSY and its parent may be read-only) or where a symlink led; only its top folder is swapped.
        var inside = Directory.Exists(target);
        var workFolder = inside ? target : parent;
        string temp;
        try
        {
            Directory.CreateDirectory(parent);
            RemoveAbandonedTrees(parent, target, log);
            temp = Path.Combine(workFolder, inside ? $".vddkbuild-{Guid.NewGuid():N}.tmp" : $".{Path.GetFileName(target)}.vddkbuild-{Guid.NewGuid():N}.tmp");
            Directory.CreateDirectory(temp);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Failed(archivePath, target, ex, workFolder);
        }

        try
        {
            ProbeSymlinks(temp, target, createSymlink);
            var sink = new ExtractingSink(temp);
            var contents = await VddkArchiveFile.ReadWhileUnchangedAsync(archivePath, () => new VddkArchiveReader(archivePath, options, log).ReadAsync(sink, cancellationToken)).ConfigureAwait(false);
            sink.Complete(cancellationToken);
            cancellationToken.ThrowIfCancellationRequested();
            if (inside)
            {
                PublishInside(temp, target, log);
            }
            else
            {
                Publish(temp, target, log);
            }
            log.Info($"Extracted VDDK {contents.Version} ({contents.Entries.Count} entries) to '{target}'.");
            return contents;
        }
        catch (Exception ex)
        {
            TryDelete(temp, log);
            if (ex is VddkException or OperationCanceledException)
            {
                throw;
            }
            if (ex is IOException or UnauthorizedAccessException)
            {
                throw Failed(archivePath, target, ex, workFolder);
            }
            throw;
        }
    }

    private static void CheckReplaceable(string target)
    {
        if (File.Exists(target))
        {
            throw new VddkException(ErrorCodes.ExtractFailed, $"Cannot extract the VDDK to '{target}': it is a file. Choose a folder path.", target);
        }
        if (!Directory.Exists(target))
        {
            return;
        }
        var foreign = Directory.EnumerateFileSystemEntries(target)
            .Select(Path.GetFileName)
            .Where(name => name != EntryPaths.TopFolder && !IsInsideTemporary(name!))
            .Take(3)
            .ToList();
        if (foreign.Count > 0)
        {
            throw new VddkException(ErrorCodes.ExtractFailed,
                $"Cannot extract the VDDK to '{target}': the folder exists and holds other things ({string.Join(", ", foreign)}), and extraction replaces the whole folder. Choose an empty or dedicated folder.",
                target);
        }
    }

    /// <summary>
    /// A tree without its symlinks is worse than no tree: lib64/libvixDiskLib.so is a link, and Forklift's validation
    /// rejects an image without it. File systems like FAT/exFAT, some SMB mounts, and Windows without the symlink
    /// privilege cannot hold them, so this is tried before anything is written.
    /// </summary>
    private static void ProbeSymlinks(string temp, string target, Func<string, string, FileSystemInfo> createSymlink)
    {
        var probe = Path.Combine(temp, ".symlink-probe");
        try
        {
            createSymlink(probe, "probe-target");
            var ok = new FileInfo(probe).LinkTarget == "probe-target";
            File.Delete(probe);
            if (ok)
            {
                return;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            throw NoSymlinks(target, ex);
        }
        throw NoSymlinks(target, null);
    }

    private static VddkException NoSymlinks(string target, Exception? inner) => new(
        ErrorCodes.ExtractTargetNoSymlinks,
        $"The file system of '{target}' cannot hold symbolic links{(inner is null ? string.Empty : $" ({inner.Message})")}. The VDDK's lib64 links (libvixDiskLib.so -> libvixDiskLib.so.N -> ...) would be lost, and Forklift would reject an image built from that tree (VDDKInvalid). Extract to a folder on a Linux file system (ext4, xfs, tmpfs) or APFS instead.",
        target,
        inner);

    /// <summary>Swaps <c>temp/vmware-vix-disklib-distrib</c> in for the target's own, in the target folder (same file system).</summary>
    private static void PublishInside(string temp, string target, IBuildLog log)
    {
        var top = Path.Combine(target, EntryPaths.TopFolder);
        var previous = Path.Combine(temp, "previous");
        var hadPrevious = Directory.Exists(top);
        if (hadPrevious)
        {
            Directory.Move(top, previous);
        }
        try
        {
            Directory.Move(Path.Combine(temp, EntryPaths.TopFolder), top);
        }
        catch
        {
            if (hadPrevious)
            {
                Directory.Move(previous, top);
            }
            throw;
        }
        TryDelete(temp, log);
    }

    /// <summary>Our temporary folder inside an existing target (<c>.vddkbuild-&lt;32 hex&gt;.tmp</c>), left by a killed build.</summary>
    private static bool IsInsideTemporary(string name) =>
        name.Length == ".vddkbuild-".Length + 32 + ".tmp".Length && name.StartsWith(".vddkbuild-", StringComparison.Ordinal) && name.EndsWith(".tmp", StringComparison.Ordinal);

    private static void Publish(string temp, string target, IBuildLog log)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
            return;
        }
        var old = $"{temp[..^".tmp".Length]}.old";
        Directory.Move(target, old);
        try
        {
            Directory.Move(temp, target);
        }
        catch
        {
            Directory.Move(old, target);
            throw;
        }
        TryDelete(old, log);
    }

    /// <summary>
    /// Deletes the temporary trees (<c>.NAME.vddkbuild-*.tmp</c>, and <c>.old</c> for the tree being replaced) of
    /// extractions to this same target that were killed (<c>kill -9</c>, an OOM kill) before they could rename or
    /// remove them: each is a whole unpacked VDDK, and nothing else ever removes them. An extraction renames its tree
    /// as soon as it is complete, so only trees where nothing was written for
    /// <see cref="AbandonedTemporaryFiles.AbandonedAfter"/> are taken for abandoned; other names are left alone.
    /// </summary>
    private static void RemoveAbandonedTrees(string parent, string target, IBuildLog log)
    {
        var prefix = $".{Path.GetFileName(target)}.vddkbuild-";
        List<DirectoryInfo> candidates;
        try
        {
            candidates = [.. new DirectoryInfo(parent).EnumerateDirectories(prefix + "*").Where(d => IsTemporaryTreeName(d.Name, prefix))];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return; // housekeeping only
        }
        var cutoff = DateTime.UtcNow - AbandonedTemporaryFiles.AbandonedAfter;
        foreach (var tree in candidates)
        {
            if (NewestWrite(tree) > cutoff)
            {
                continue;
            }
            TryDelete(tree.FullName, log);
            if (!Directory.Exists(tree.FullName))
            {
                log.Detail($"Deleted '{tree.FullName}', the temporary tree an interrupted extraction left behind.");
            }
        }
    }

    private static bool IsTemporaryTreeName(string name, string prefix)
    {
        var rest = name.AsSpan(prefix.Length);
        return rest.Length == 36 && (rest.EndsWith(".tmp", StringComparison.Ordinal) || rest.EndsWith(".old", StringComparison.Ordinal))
            && rest[..32].ContainsAnyExcept("0123456789abcdef") is false;
    }

    /// <summary>The last write in the tree's top levels: entries land in <c>lib64/</c>, <c>bin64/</c>... while it is extracted.</summary>
    private static DateTime NewestWrite(DirectoryInfo tree)
    {
        var newest = tree.LastWriteTimeUtc;
        try
        {
            foreach (var folder in tree.EnumerateDirectories("*", new EnumerationOptions { RecurseSubdirectories = true, MaxRecursionDepth = 1, AttributesToSkip = FileAttributes.ReparsePoint }))
            {
                newest = folder.LastWriteTimeUtc > newest ? folder.LastWriteTimeUtc : newest;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return DateTime.MaxValue; // cannot tell: leave it
        }
        return newest;
    }

    private static void TryDelete(string path, IBuildLog log)
    {
        try
        {
            if (!Directory.Exists(path))
            {
                return;
            }
            // Directories from the archive may be read-only (e.g. 0555); their entries cannot be removed until they are writable.
            if (!OperatingSystem.IsWindows())
            {
                foreach (var directory in Directory.EnumerateDirectories(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint }).Prepend(path))
                {
                    File.SetUnixFileMode(directory, File.GetUnixFileMode(directory) | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
            }
            Directory.Delete(path, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.Warn(ErrorCodes.ExtractCleanupFailed, $"Could not remove the temporary folder '{path}': {VddkException.Reason(ex)}. Delete it by hand.");
        }
    }

    private static VddkException Failed(string archivePath, string target, Exception inner, string parent) => new(
        ErrorCodes.ExtractFailed,
        $"Extracting '{archivePath}' to '{target}' failed: {VddkException.Reason(inner)}. '{target}' was left unchanged."
            + (DiskSpace.IsFull(inner)
                ? DiskSpace.Shortfall(inner, parent, UnpackedSize(archivePath), "VddkExtractDirectory")
                : " Check free space and permissions of its parent folder."),
        target,
        inner);

    /// <summary>
    /// About how much the tree takes unpacked, when the archive says so without being read: a gzip's trailer holds
    /// the length of what it packs (modulo 4 GiB: a VDDK is some 70 MB), a plain tar is its own size. Null otherwise.
    /// </summary>
    private static long? UnpackedSize(string archivePath)
    {
        try
        {
            using var file = File.OpenHandle(archivePath);
            var length = RandomAccess.GetLength(file);
            Span<byte> head = stackalloc byte[2];
            if (length < 20 || RandomAccess.Read(file, head, 0) != 2)
            {
                return null;
            }
            if (head[0] != 0x1f || head[1] != 0x8b)
            {
                return ArchiveFormatSniffer.Detect(ReadHead(file)) == ArchiveFormat.Tar ? length : null;
            }
            Span<byte> trailer = stackalloc byte[4];
            RandomAccess.Read(file, trailer, length - 4);
            long size = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(trailer);
            return size >= length ? size : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        static byte[] ReadHead(Microsoft.Win32.SafeHandles.SafeFileHandle file)
        {
            var head = new byte[ArchiveFormatSniffer.HeadLength];
            return head[..RandomAccess.Read(file, head, 0)];
        }
    }
}
