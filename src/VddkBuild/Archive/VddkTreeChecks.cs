using System.Buffers.Binary;
using System.Text.RegularExpressions;
using VddkBuild.Diagnostics;

namespace VddkBuild.Archive;

/// <summary>
/// The checks that need the whole tree: every symlink stays inside once symlinked folders are followed, and the
/// library Forklift and nbdkit load is really there: lib64/libvixDiskLib.so (what the validation job runs
/// 'file -E' on) and lib64/libvixDiskLib.so.&lt;major&gt; (what nbdkit dlopens) both resolve to the one regular
/// file lib64/libvixDiskLib.so.&lt;version&gt;, whose version must agree with the archive's file name.
/// </summary>
/// <param name="libraryHeads">The first bytes (<see cref="LibraryHeadBytes"/>) of the regular files that are ELF, by path:
/// of every one, since the file a libvixDiskLib chain ends at may be anywhere in the tree (a file absent here is not ELF).</param>
internal sealed partial class VddkTreeChecks(string archivePath, IReadOnlyDictionary<string, VddkEntry> entries, IReadOnlyDictionary<string, byte[]>? libraryHeads = null)
{
    private const string Lib64 = EntryPaths.TopFolder + "/lib64";
    private const string VixDiskLib = Lib64 + "/libvixDiskLib.so";
    private const string Soname8 = VixDiskLib + ".8";
    private const long MinLibraryBytes = 4096; // no ELF shared library is smaller
    private const ushort ElfMachineX86_64 = 62;

    /// <summary>An ELF header up to e_machine: magic, class, byte order, ..., type, machine.</summary>
    public const int LibraryHeadBytes = 20;

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
            if (WindowsLibraries().FirstOrDefault() is { } dll)
            {
                throw WindowsVddk(archivePath, dll);
            }
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
        CheckArchitecture(LibraryFile(unversioned), version, nameInfo);

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
        var final = LibraryFile(resolution);
        if (VersionedName().IsMatch(Path.GetFileName(final.Path)) || final.Length >= MinLibraryBytes)
        {
            return;
        }
        throw new VddkException(ErrorCodes.VixDiskLibChainBroken,
            $"In the VDDK archive '{archivePath}', {EntryPaths.Display(path)} leads to {EntryPaths.Display(final.Path)}, a {final.Length}-byte regular file instead of a symbolic link to the library. The archive was probably made or unpacked on a system that turns symlinks into small text files (Windows, some zip tools); nbdkit could not load it. Use the original VMware-vix-disklib-*.tar.gz, or recreate the links with 'ln -s'.",
            path);
    }

    /// <summary>The regular file a chain ends at, through hard links (a hard link may name another; both are earlier entries).</summary>
    private VddkEntry LibraryFile(Resolution resolution)
    {
        var final = entries[resolution.FinalPath!];
        while (final.Kind == VddkEntryKind.Hardlink)
        {
            final = entries[final.LinkTarget!];
        }
        return final;
    }

    /// <summary>
    /// VMware also ships the VDDK for Windows (a zip of DLLs), and other architectures may be offered; Forklift's nodes
    /// load the Linux x86_64 libraries only. The library's ELF header decides; where the file is not ELF at all (test
    /// fixtures), the architecture the archive's name states does.
    /// </summary>
    private void CheckArchitecture(VddkEntry library, string version, VddkArchiveName? nameInfo)
    {
        string? found = null;
        if (libraryHeads is not null && libraryHeads.TryGetValue(library.Path, out var head)
            && head.Length >= LibraryHeadBytes && head[0] == 0x7F && head[1] == (byte)'E' && head[2] == (byte)'L' && head[3] == (byte)'F')
        {
            var machine = head[5] == 2 ? BinaryPrimitives.ReadUInt16BigEndian(head.AsSpan(18)) : BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(18));
            if (machine == ElfMachineX86_64 && head[4] == 2)
            {
                return;
            }
            found = $"an ELF library for {ElfArchitecture(machine, head[4])}";
        }
        else if (nameInfo?.Architecture is { } named && named is not ("x86_64" or "amd64"))
        {
            found = $"named as the VDDK for {named}";
        }
        if (found is null)
        {
            return;
        }
        throw new VddkException(ErrorCodes.VddkArchitectureNotX86_64,
            $"The VDDK archive '{archivePath}' is not the VDDK for Linux x86_64: {EntryPaths.Display(library.Path)} is {found}. Forklift's init container copies the tree onto x86_64 nodes, where virt-v2v and nbdkit cannot load it. Download the Linux x86_64 VDDK (VMware-vix-disklib-{version}-<build>.x86_64.tar.gz) from the Broadcom developer portal.",
            library.Path);
    }

    private static string ElfArchitecture(ushort machine, byte elfClass) => machine switch
    {
        3 => "32-bit x86 (i386)",
        62 => "x86_64 built as 32-bit code (x32)",
        183 => "aarch64 (ARM 64-bit)",
        40 => "32-bit ARM",
        21 => "ppc64",
        22 => "s390x",
        243 => "riscv",
        _ => $"ELF machine {machine} ({(elfClass == 2 ? "64" : "32")}-bit)",
    };

    /// <summary>The Windows VDDK's libraries (bin/vixDiskLib.dll and friends), in archive order.</summary>
    private IEnumerable<string> WindowsLibraries() =>
        entries.Values.Where(e => e.Kind is VddkEntryKind.File or VddkEntryKind.Hardlink && IsWindowsBinary(e.Path)).Select(e => e.Path);

    internal static bool IsWindowsBinary(string path) =>
        path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".exe", StringComparison.OrdinalIgnoreCase);

    internal static VddkException WindowsVddk(string archivePath, string binary) => new(
        ErrorCodes.WindowsVddk,
        $"'{archivePath}' is the VDDK for Windows (it holds '{EntryPaths.Printable(binary)}' and no lib64/libvixDiskLib.so): Forklift runs the VDDK's Linux libraries and cannot use it. Download the VDDK for Linux, VMware-vix-disklib-<version>-<build>.x86_64.tar.gz, from the Broadcom developer portal and set VddkArchive to it.",
        binary);

    /// <summary>
    /// The VDDK 9 field fix for MTV releases whose nbdkit loads libvixDiskLib.so.8: the relative link
    /// lib64/libvixDiskLib.so.8 -> the library file that libvixDiskLib.so.&lt;major&gt; leads to (relative, because the
    /// init container copies the tree to /opt). Null when nothing is to be added: the archive has libvixDiskLib.so.8
    /// itself (it must then lead to the library), or it is older than VDDK 9 (warning VDDK1904).
    /// </summary>
    public VddkEntry? Soname8Link(string version, IBuildLog log)
    {
        // A major too large for an int (a crafted name) is certainly not older than 9.
        var major = int.TryParse(version.Split('.')[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed) ? parsed : int.MaxValue;
        if (major < 9)
        {
            log.Warn(ErrorCodes.Soname8LinkNotAdded, major == 8
                ? $"VddkAddSoname8Link is set, but '{Path.GetFileName(archivePath)}' is VDDK {version}, whose own lib64/libvixDiskLib.so.8 is what MTV loads: nothing was added. The property is for VDDK 9 and later only; remove it for this archive."
                : $"VddkAddSoname8Link is set, but '{Path.GetFileName(archivePath)}' is VDDK {version}, which MTV loads as libvixDiskLib.so.{major}: nothing was added. The property is for VDDK 9 and later only; remove it for this archive.");
            return null;
        }
        var versioned = $"{VixDiskLib}.{version.Split('.')[0]}";
        if (entries.TryGetValue(Soname8, out var existing))
        {
            var resolution = _resolver.Resolve(Soname8);
            if (resolution.Outcome != ResolutionOutcome.RegularFile)
            {
                throw ChainBroken(Soname8, resolution,
                    $"VddkAddSoname8Link is set for MTV releases that load libvixDiskLib.so.8, and the archive's own libvixDiskLib.so.8 ({(existing.Kind == VddkEntryKind.Symlink ? $"a link to '{existing.LinkTarget}'" : "not a link")}) would fail there with 'cannot open shared object file'; fix or remove it in the archive and the build adds a correct one");
            }
            CheckEndsAtLibrary(Soname8, resolution);
            log.Detail($"VddkAddSoname8Link: the archive already has {EntryPaths.Display(Soname8)} -> '{existing.LinkTarget}', leading to the library; nothing added.");
            return null;
        }
        var library = _resolver.Resolve(versioned).FinalPath!;
        var target = RelativeTo(Lib64, library);
        log.Info($"VddkBuild: added the relative link lib64/libvixDiskLib.so.8 -> {target} for MTV releases that load libvixDiskLib.so.8 (VddkAddSoname8Link).");
        return new VddkEntry(Soname8, VddkEntryKind.Symlink, 0x1FF, entries[versioned].ModificationTime, 0, target);
    }

    /// <summary>The relative link target from the folder <paramref name="from"/> to <paramref name="path"/> (both entry paths).</summary>
    private static string RelativeTo(string from, string path)
    {
        var fromParts = from.Split('/');
        var pathParts = path.Split('/');
        var common = 0;
        while (common < fromParts.Length && common < pathParts.Length - 1 && fromParts[common] == pathParts[common])
        {
            common++;
        }
        return string.Join('/', Enumerable.Repeat("..", fromParts.Length - common).Concat(pathParts.Skip(common)));
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
