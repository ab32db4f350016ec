namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// What Forklift does with a VDDK image, reproduced with podman: run it as an init container under an arbitrary UID
/// with GID 0 and an empty folder at /opt, let its ENTRYPOINT copy the tree, then apply the validation job's check
/// (`file -E /opt/vmware-vix-disklib-distrib/lib64/libvixDiskLib.so`) plus what nbdkit loads (`.so.&lt;major&gt;`).
/// </summary>
public static class ForkliftCheck
{
    /// <summary>OpenShift's restricted SCC runs pods as a UID from the namespace's range with GID 0.</summary>
    public const string ArbitraryUser = "1000680000:0";

    public const string TreeName = "vmware-vix-disklib-distrib";

    private const int MaxSymlinkHops = 40;

    /// <summary>
    /// `podman run --rm --network none --user 1000680000:0 -v DIR:/opt IMAGE` with the image's own entrypoint, then
    /// <see cref="AssertVddkTree"/> on DIR. DIR (created world-writable, like an emptyDir) is returned for further checks.
    /// </summary>
    public static async Task<string> RunInitContainerAsync(Podman podman, string image, string? optDirectory = null, CancellationToken cancellationToken = default)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw LinuxOnly.NotSupported();
        }
        var optDir = optDirectory ?? Directory.CreateTempSubdirectory("vddkbuild-opt-").FullName;
        Directory.CreateDirectory(optDir);
        File.SetUnixFileMode(optDir, (UnixFileMode)0b111_111_111);
        try
        {
            var result = await podman.RunAsync(image, new ContainerRunOptions { User = ArbitraryUser, Volumes = [(optDir, "/opt")] }, cancellationToken);
            if (!result.Succeeded)
            {
                throw new ForkliftCheckException($"The init container failed as user {ArbitraryUser} (Forklift would report the VDDK init image as not ready).", [result.StandardError.Trim()]);
            }
            AssertVddkTree(optDir);
            return optDir;
        }
        catch when (optDirectory is null)
        {
            // The caller never learns a folder it did not name when the check fails, so nothing may be left behind.
            Directory.Delete(optDir, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Asserts on a folder that received the init container's copy (Forklift's /opt):
    /// <c>vmware-vix-disklib-distrib/lib64/libvixDiskLib.so</c> is a symlink whose chain stays in the tree and ends at a
    /// regular file <c>libvixDiskLib.so.X[.Y...]</c>; <c>libvixDiskLib.so.X</c> (what nbdkit dlopens) resolves too;
    /// every file is world-readable and every directory world-readable and -executable. Throws <see cref="ForkliftCheckException"/> listing every problem.
    /// </summary>
    public static void AssertVddkTree(string optDirectory)
    {
        var problems = new List<string>();
        var tree = Path.Combine(optDirectory, TreeName);
        if (!Directory.Exists(tree))
        {
            throw new ForkliftCheckException($"'{tree}' does not exist: virt-v2v would silently fall back to the slow non-VDDK transport.", []);
        }

        var lib64 = Path.Combine(tree, "lib64");
        var unversioned = Path.Combine(lib64, "libvixDiskLib.so");
        var info = new FileInfo(unversioned);
        if (!info.Exists && info.LinkTarget is null)
        {
            problems.Add("lib64/libvixDiskLib.so is missing (Forklift: VDDKInvalid).");
        }
        else if (info.LinkTarget is null)
        {
            problems.Add("lib64/libvixDiskLib.so is a regular file, not the symlink chain the archive has.");
        }
        else if (ResolveInTree(tree, unversioned, problems) is { } final)
        {
            var name = Path.GetFileName(final);
            const string prefix = "libvixDiskLib.so.";
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || name.Length == prefix.Length)
            {
                problems.Add($"lib64/libvixDiskLib.so resolves to '{name}', not to a versioned libvixDiskLib.so.X.Y.Z.");
            }
            else
            {
                var major = name[prefix.Length..].Split('.')[0];
                var majorLink = Path.Combine(lib64, prefix + major);
                if (!File.Exists(majorLink) && new FileInfo(majorLink).LinkTarget is null)
                {
                    problems.Add($"lib64/{prefix}{major} (the name nbdkit dlopens) is missing.");
                }
                else
                {
                    ResolveInTree(tree, majorLink, problems);
                }
            }
        }

        CheckModes(tree, tree, problems);
        if (problems.Count > 0)
        {
            throw new ForkliftCheckException($"The copied VDDK tree in '{optDirectory}' would not pass Forklift's checks.", problems);
        }
    }

    /// <summary>Follows a symlink chain by hand (relative to each link's folder) so the host's own /opt or / never answers for the tree.</summary>
    private static string? ResolveInTree(string tree, string start, List<string> problems)
    {
        var treeRoot = Path.GetFullPath(tree) + Path.DirectorySeparatorChar;
        var current = start;
        var display = Path.GetRelativePath(tree, start);
        for (var hop = 0; hop <= MaxSymlinkHops; hop++)
        {
            var info = new FileInfo(current);
            if (info.LinkTarget is { } target)
            {
                if (Path.IsPathRooted(target))
                {
                    problems.Add($"{display}: the chain has an absolute symlink '{Path.GetRelativePath(tree, current)} -> {target}' (breaks once the tree is copied to /opt).");
                    return null;
                }
                current = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(current)!, target));
                if (!current.StartsWith(treeRoot, StringComparison.Ordinal))
                {
                    problems.Add($"{display}: the chain leaves the tree at '{target}'.");
                    return null;
                }
                continue;
            }
            if (!info.Exists)
            {
                problems.Add($"{display}: broken symbolic link, '{Path.GetRelativePath(tree, current)}' does not exist (Forklift: VDDKInvalid).");
                return null;
            }
            return current;
        }
        problems.Add($"{display}: more than {MaxSymlinkHops} symlinks in the chain (a loop?).");
        return null;
    }

    private static void CheckModes(string tree, string directory, List<string> problems)
    {
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
        {
            var relative = Path.GetRelativePath(tree, entry.FullName);
            if (entry.LinkTarget is not null)
            {
                continue;
            }
            if (entry is DirectoryInfo subdirectory)
            {
                if ((entry.UnixFileMode & (UnixFileMode.OtherRead | UnixFileMode.OtherExecute)) != (UnixFileMode.OtherRead | UnixFileMode.OtherExecute))
                {
                    problems.Add($"{relative}/: directory mode {Octal(entry.UnixFileMode)} is not world-readable and -executable.");
                }
                CheckModes(tree, subdirectory.FullName, problems);
            }
            else if ((entry.UnixFileMode & UnixFileMode.OtherRead) == 0)
            {
                problems.Add($"{relative}: file mode {Octal(entry.UnixFileMode)} is not world-readable.");
            }
        }
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode, 8).PadLeft(4, '0');
}

/// <summary>A VDDK tree or image that Forklift would reject; <see cref="Problems"/> lists each reason.</summary>
public sealed class ForkliftCheckException(string message, IReadOnlyList<string> problems)
    : Exception(problems.Count == 0 ? message : message + "\n  - " + string.Join("\n  - ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
