using System.Text.RegularExpressions;

namespace VddkBuild.Archive;

/// <summary>
/// The checks that need the whole tree: every symlink stays inside once symlinked folders are followed, and the
/// library Forklift and nbdkit load is really there: lib64/libvixDiskLib.so (what the validation job runs
/// 'file -E' on) and lib64/libvixDiskLib.so.&lt;major&gt; (what nbdkit dlopens) both resolve to the one regular
/// file lib64/libvixDiskLib.so.&lt;version&gt;, whose version must agree with the archive's file name.
/// </summary>
internal sealed partial class VddkTreeChecks(string archivePath, IReadOnlyDictionary<string, VddkEntry> entries)
{
    private const string Lib64 = EntryPaths.TopFolder + "/lib64";
    private const string VixDiskLib = Lib64 + "/libvixDiskLib.so";
    private const long MinLibraryBytes = 4096; // no ELF shared library is smaller
    private readonly SymlinkResolver _resolver = new(entries);

    public void CheckSymlinksStayInside()
    {
        foreach (var entry in entries.Values)
        {
            if (entry.Kind != VddkEntryKind.Symlink)
            {
                continue;
            }
            var resolution = _resolver.Resolve(entry.Path);
            if (resolution.Outcome == ResolutionOutcome.Escapes)
            {
                throw TreeBuilder.SymlinkEscapes(archivePath, entry.Path, entry.LinkTarget ?? string.Empty,
                    $"following it (through symlinked folders) leads out of {EntryPaths.TopFolder}/: {resolution.Describe()}");
            }
        }
    }

    /// <summary>Returns the confirmed VDDK version.</summary>
    public string CheckVixDiskLib(VddkArchiveName? nameInfo)
    {
        if (entries.Count == 0)
        {
            throw new VddkException(ErrorCodes.NotAVddk,
                $"'{archivePath}' is not a VDDK archive: it has no '{EntryPaths.TopFolder}/' folder (it is empty or holds only macOS metadata). Use the VMware-vix-disklib-*.x86_64.tar.gz for Linux as downloaded.",
                archivePath);
        }
        if (!entries.ContainsKey(VixDiskLib))
        {
            throw new VddkException(ErrorCodes.VixDiskLibMissing,
                $"The VDDK archive '{archivePath}' has no {EntryPaths.Display(VixDiskLib)}, the library Forklift's validation job checks and nbdkit loads. It is not a complete VDDK for Linux x86_64; download the archive again.",
                VixDiskLib);
        }
        var unversioned = _resolver.Resolve(VixDiskLib);
        if (unversioned.Outcome != ResolutionOutcome.RegularFile)
        {
            throw ChainBroken(VixDiskLib, unversioned, "Forklift's validation job ('file -E .../lib64/libvixDiskLib.so') would mark the image VDDKInvalid");
        }

        var version = FindVersion(unversioned.FinalPath!);
        var major = version.Split('.')[0];
        var versioned = $"{VixDiskLib}.{major}";
        var soname = _resolver.Resolve(versioned);
        if (soname.Outcome != ResolutionOutcome.RegularFile)
        {
            throw ChainBroken(versioned, soname,
                $"The nbdkit VDDK plugin (used by virt-v2v and CDI) loads libvixDiskLib.so.{major} and would fail with 'cannot open shared object file'; add it as a relative link: 'ln -s libvixDiskLib.so.{version} libvixDiskLib.so.{major}' in lib64");
        }

        CheckEndsAtLibrary(VixDiskLib, unversioned);
        CheckEndsAtLibrary(versioned, soname);

        if (nameInfo is not null && !VddkArchiveName.AreCompatible(nameInfo.Version, version))
        {
            throw new VddkException(ErrorCodes.VersionMismatch,
                $"The archive's file name '{Path.GetFileName(archivePath)}' says VDDK {nameInfo.Version}, but it contains lib64/libvixDiskLib.so.{version}. It was renamed or repacked; use the archive as downloaded, or rename it to match its contents (e.g. '{new VddkArchiveName(version, nameInfo.BuildNumber).ToFileName()}').",
                archivePath);
        }
        return version;
    }

    /// <summary>
    /// Archives made or unpacked where symlinks are not supported (Windows, some zip tools) turn each link into a
    /// small text file holding the target name. Such a "library" passes Forklift's 'file -E' check but nbdkit cannot
    /// load it. A dereferenced copy of the real library (tar -h) is fine: it is megabytes, not bytes.
    /// </summary>
    private void CheckEndsAtLibrary(string path, Resolution resolution)
    {
        var final = entries[resolution.FinalPath!];
        while (final.Kind == VddkEntryKind.Hardlink) // a hard link may name another hard link; both are earlier entries
        {
            final = entries[final.LinkTarget!];
        }
        if (VersionedName().IsMatch(Path.GetFileName(final.Path)) || final.Length >= MinLibraryBytes)
        {
            return;
        }
        throw new VddkException(ErrorCodes.VixDiskLibChainBroken,
            $"In the VDDK archive '{archivePath}', {EntryPaths.Display(path)} leads to {EntryPaths.Display(final.Path)}, a {final.Length}-byte regular file instead of a symbolic link to the library. The archive was probably made or unpacked on a system that turns symlinks into small text files (Windows, some zip tools); nbdkit could not load it. Use the original VMware-vix-disklib-*.tar.gz, or recreate the links with 'ln -s'.",
            path);
    }

    private string FindVersion(string chainTarget)
    {
        var candidates = entries.Values
            .Where(e => e.Kind is VddkEntryKind.File or VddkEntryKind.Hardlink && EntryPaths.Parent(e.Path) == Lib64)
            .Select(e => VersionedName().Match(Path.GetFileName(e.Path)))
            .Where(m => m.Success)
            .ToDictionary(m => $"{Lib64}/{m.Value}", m => m.Groups["version"].Value, StringComparer.Ordinal);

        // The file libvixDiskLib.so leads to names the version, even when a symlinked folder puts it outside lib64.
        var chainName = VersionedName().Match(Path.GetFileName(chainTarget));
        if (chainName.Success)
        {
            return chainName.Groups["version"].Value;
        }
        if (candidates.Count == 1)
        {
            return candidates.Values.Single();
        }
        var found = candidates.Count == 0 ? "there is none" : $"there are several ({string.Join(", ", candidates.Keys.Select(EntryPaths.Display).Order(StringComparer.Ordinal))}) and libvixDiskLib.so leads to none of them";
        throw new VddkException(ErrorCodes.VixDiskLibMissing,
            $"The VDDK archive '{archivePath}' has no single regular file lib64/libvixDiskLib.so.<version> (e.g. libvixDiskLib.so.8.0.1) that gives the VDDK version: {found}. Use the archive as downloaded from VMware/Broadcom.",
            Lib64);
    }

    private VddkException ChainBroken(string path, Resolution resolution, string consequence) => new(
        ErrorCodes.VixDiskLibChainBroken,
        $"In the VDDK archive '{archivePath}', {EntryPaths.Display(path)} does not lead to a regular file: {resolution.Describe()}. {consequence}. Use the archive as downloaded, or fix the links with relative targets (the tree is copied to /opt).",
        path);

    [GeneratedRegex(@"^libvixDiskLib\.so\.(?<version>\d+(?:\.\d+){2,3})$", RegexOptions.CultureInvariant)]
    private static partial Regex VersionedName();
}
