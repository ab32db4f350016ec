using System.Text;

namespace VddkBuild.Archive;

/// <summary>
/// Applies the per-entry rules in archive order and keeps the tree seen so far: the single top folder, no
/// devices, symlinks that stay inside, hard links to earlier files, no duplicates, nothing written through a
/// symlink, and directories the archive forgot to list synthesised before their first child.
/// </summary>
internal sealed class TreeBuilder(string archivePath)
{
    private const int SynthesizedDirectoryMode = 0x1ED; // 0755
    private const int MaxSymlinkTargetBytes = 4095;     // PATH_MAX less its NUL: symlink(2) fails with ENAMETOOLONG beyond
    private readonly Dictionary<string, VddkEntry> _entries = new(StringComparer.Ordinal);
    private readonly List<VddkEntry> _delivered = [];
    private readonly List<VddkEntry> _pendingParents = [];
    private readonly Dictionary<string, int> _synthesizedAt = new(StringComparer.Ordinal); // index in _delivered

    public IReadOnlyDictionary<string, VddkEntry> Entries => _entries;
    public IReadOnlyList<VddkEntry> Delivered => _delivered;
    public string? LastPath { get; private set; }
    public DateTimeOffset NewestModificationTime { get; private set; } = DateTimeOffset.MinValue;

    /// <summary>
    /// Validates one entry and returns it. A directory the archive lists after its children replaces the stand-in
    /// synthesised for them (which the sink already has): its mode and time are the archive's, and the sink gets it
    /// a second time.
    /// </summary>
    public VddkEntry Accept(string path, ArchiveSourceEntry raw)
    {
        LastPath = path;
        if (!EntryPaths.IsInsideTopFolder(path))
        {
            if (raw.Type == SourceEntryType.File && VddkTreeChecks.IsWindowsBinary(path) && LooksLikeVddk(path))
            {
                throw VddkTreeChecks.WindowsVddk(archivePath, path);
            }
            if (raw.Type == SourceEntryType.File && IsArchiveFile(path))
            {
                throw new VddkException(ErrorCodes.NotAVddk,
                    $"'{archivePath}' is not a VDDK archive but holds another archive, '{EntryPaths.Printable(path)}' (a download wrapped in a zip or tar). Unpack '{Path.GetFileName(archivePath)}' and set VddkArchive to the VMware-vix-disklib-*.x86_64.tar.gz inside it.",
                    path);
            }
            throw new VddkException(ErrorCodes.NotAVddk,
                $"'{archivePath}' is not a VDDK archive: the entry '{EntryPaths.Printable(path)}' is outside the single top folder '{EntryPaths.TopFolder}/' that every VDDK has. Use the VMware-vix-disklib-*.x86_64.tar.gz for Linux as downloaded, or repack it so that everything is under {EntryPaths.TopFolder}/.",
                path);
        }
        if (path == EntryPaths.TopFolder && raw.Type != SourceEntryType.Directory)
        {
            throw new VddkException(ErrorCodes.NotAVddk,
                $"'{archivePath}' is not a VDDK archive: '{EntryPaths.TopFolder}' is a {raw.TypeDescription}, not a directory.", path);
        }

        var mtime = TruncateToSeconds(raw.ModificationTime);
        var kind = raw.Type switch
        {
            SourceEntryType.Directory => VddkEntryKind.Directory,
            SourceEntryType.File => VddkEntryKind.File,
            SourceEntryType.Symlink => VddkEntryKind.Symlink,
            SourceEntryType.Hardlink => VddkEntryKind.Hardlink,
            SourceEntryType.CharacterDevice or SourceEntryType.BlockDevice or SourceEntryType.Fifo => throw new VddkException(ErrorCodes.SpecialFileEntry,
                $"The archive entry '{EntryPaths.Printable(path)}' in '{archivePath}' is a {raw.TypeDescription}. A VDDK contains only files, directories and links, and an image must not carry device nodes; remove the entry or use the original VDDK archive.",
                path),
            _ => throw new VddkException(ErrorCodes.SpecialFileEntry,
                $"The archive entry '{EntryPaths.Printable(path)}' in '{archivePath}' is a {raw.TypeDescription}, which cannot be put in an image faithfully. Repack the VDDK with plain tar (no --sparse, no multi-volume) or use the original archive.",
                path),
        };

        if (_entries.TryGetValue(path, out var existing))
        {
            // Some tools list a directory after its children (find -depth order); the stand-in was already delivered.
            if (existing.Synthesized && kind == VddkEntryKind.Directory)
            {
                var real = existing with { Mode = raw.Mode & 0xFFF, ModificationTime = mtime, Synthesized = false };
                _entries[path] = real;
                _delivered[_synthesizedAt[path]] = real;
                _synthesizedAt.Remove(path);
                if (mtime > NewestModificationTime)
                {
                    NewestModificationTime = mtime;
                }
                return real;
            }
            throw new VddkException(ErrorCodes.DuplicateEntry,
                $"The archive '{archivePath}' contains '{EntryPaths.Printable(path)}' twice (first as a {Describe(existing.Kind)}, then as a {Describe(kind)}). Which one wins would depend on the tool that unpacks it; repack the VDDK so that every path appears once.",
                path);
        }

        string? linkTarget = null;
        if (kind == VddkEntryKind.Symlink)
        {
            linkTarget = raw.LinkName ?? string.Empty;
            CheckSymlinkTarget(path, linkTarget);
        }
        else if (kind == VddkEntryKind.Hardlink)
        {
            linkTarget = CheckHardlinkTarget(path, raw.LinkName ?? string.Empty);
        }

        QueueMissingParents(path, mtime);
        var entry = new VddkEntry(path, kind, raw.Mode & 0xFFF, mtime, kind == VddkEntryKind.File ? raw.Length : 0, linkTarget);
        Record(entry);
        return entry;
    }

    /// <summary>Directories synthesised for the last accepted entry, to deliver before it.</summary>
    public IReadOnlyList<VddkEntry> TakeSynthesizedParents()
    {
        if (_pendingParents.Count == 0)
        {
            return [];
        }
        var parents = _pendingParents.ToArray();
        _pendingParents.Clear();
        return parents;
    }

    private void QueueMissingParents(string path, DateTimeOffset childTime)
    {
        var missing = new Stack<string>();
        for (var parent = EntryPaths.Parent(path); parent is not null; parent = EntryPaths.Parent(parent))
        {
            if (_entries.TryGetValue(parent, out var existing))
            {
                if (existing.Kind == VddkEntryKind.Directory)
                {
                    break;
                }
                if (existing.Kind == VddkEntryKind.Symlink)
                {
                    throw new VddkException(ErrorCodes.EntryEscapesTree,
                        $"The archive entry '{EntryPaths.Printable(path)}' in '{archivePath}' lies below '{parent}', which is a symbolic link: unpacking it would write through the link, possibly outside the folder. Repack the VDDK with the real directory instead of the link.",
                        path);
                }
                throw new VddkException(ErrorCodes.DuplicateEntry,
                    $"The archive entry '{EntryPaths.Printable(path)}' in '{archivePath}' lies below '{parent}', which the archive lists as a {Describe(existing.Kind)}, not a directory. Repack the VDDK so that every path has one type.",
                    path);
            }
            missing.Push(parent);
        }
        while (missing.Count > 0)
        {
            var directory = new VddkEntry(missing.Pop(), VddkEntryKind.Directory, SynthesizedDirectoryMode, childTime, 0, null, Synthesized: true);
            _synthesizedAt[directory.Path] = _delivered.Count;
            Record(directory);
            _pendingParents.Add(directory);
        }
    }

    private void Record(VddkEntry entry)
    {
        _entries.Add(entry.Path, entry);
        _delivered.Add(entry);
        if (entry.ModificationTime > NewestModificationTime)
        {
            NewestModificationTime = entry.ModificationTime;
        }
    }

    private void CheckSymlinkTarget(string path, string target)
    {
        string? problem = null;
        if (target.Length == 0)
        {
            problem = "its target is empty";
        }
        else if (target.Any(char.IsControl))
        {
            problem = "its target contains control characters";
        }
        else if (Encoding.UTF8.GetByteCount(target) is var targetBytes && targetBytes > MaxSymlinkTargetBytes)
        {
            problem = $"its target is {targetBytes} bytes long, and Linux holds at most {MaxSymlinkTargetBytes} in a symbolic link (creating it fails with 'File name too long', in GNU tar as in the container runtime)";
        }
        else if (target.StartsWith('/'))
        {
            problem = $"its target '{target}' is absolute; in the image the tree is copied to /opt, so an absolute target would point at the wrong place or outside it";
        }
        else
        {
            // Lexically from the link's folder; symlinked folders along the way are checked once the tree is complete.
            var depth = path.Split('/').Length - 1;
            foreach (var part in target.Split('/'))
            {
                if (part == "..")
                {
                    if (--depth < 1)
                    {
                        problem = $"its target '{target}' leads out of {EntryPaths.TopFolder}/";
                        break;
                    }
                }
                else if (part.Length > 0 && part != ".")
                {
                    depth++;
                }
            }
        }
        if (problem is not null)
        {
            throw SymlinkEscapes(archivePath, path, target, problem);
        }
    }

    internal static VddkException SymlinkEscapes(string archivePath, string path, string target, string problem)
    {
        var fix = Path.GetFileName(path).StartsWith("libvixDiskLib", StringComparison.Ordinal)
            ? $" If this is the VDDK 9 field fix for MTV releases that look for libvixDiskLib.so.8, make it a RELATIVE link inside lib64: 'cd {EntryPaths.TopFolder}/lib64 && ln -sf libvixDiskLib.so.9.x.y.z libvixDiskLib.so.8' (the real file's name), then repack."
            : " Make the link relative to its own folder and pointing inside the tree, then repack.";
        return new VddkException(ErrorCodes.SymlinkEscapesTree,
            $"The symbolic link '{EntryPaths.Printable(path)}' -> '{EntryPaths.Printable(target)}' in '{archivePath}' is not usable: {problem}.{fix}",
            path);
    }

    private string CheckHardlinkTarget(string path, string linkName)
    {
        string target;
        try
        {
            target = EntryPaths.Normalize(archivePath, linkName);
        }
        catch (VddkException ex)
        {
            throw HardlinkInvalid(path, linkName, "its target is not a safe relative path", ex);
        }
        if (!EntryPaths.IsInsideTopFolder(target))
        {
            throw HardlinkInvalid(path, linkName, $"its target is outside {EntryPaths.TopFolder}/");
        }
        if (!_entries.TryGetValue(target, out var existing))
        {
            throw HardlinkInvalid(path, linkName, "its target is not an earlier entry of the archive (missing, or listed after the link)");
        }
        if (existing.Kind is not (VddkEntryKind.File or VddkEntryKind.Hardlink))
        {
            throw HardlinkInvalid(path, linkName, $"its target is a {Describe(existing.Kind)}, and only regular files can be hard-linked");
        }
        return target;
    }

    private VddkException HardlinkInvalid(string path, string linkName, string problem, Exception? inner = null) => new(
        ErrorCodes.HardlinkInvalid,
        $"The hard link '{EntryPaths.Printable(path)}' -> '{EntryPaths.Printable(linkName)}' in '{archivePath}' is not usable: {problem}. Repack the VDDK with tar from its original files, or use the original archive.",
        path,
        inner);

    private static string Describe(VddkEntryKind kind) => kind switch
    {
        VddkEntryKind.Directory => "directory",
        VddkEntryKind.File => "regular file",
        VddkEntryKind.Symlink => "symbolic link",
        VddkEntryKind.Hardlink => "hard link",
        _ => kind.ToString(),
    };

    /// <summary>Outside the VDDK's top folder a DLL says "Windows VDDK" only when it or the archive is named like the VDDK.</summary>
    private bool LooksLikeVddk(string path) =>
        new[] { "vixDiskLib", "vddk", "vixMntapi" }.Any(name => Path.GetFileName(path).Contains(name, StringComparison.OrdinalIgnoreCase))
        || Path.GetFileName(archivePath).Contains("vix-disklib", StringComparison.OrdinalIgnoreCase);

    private static bool IsArchiveFile(string path) =>
        new[] { ".tar.gz", ".tgz", ".tar", ".tar.xz", ".txz", ".tar.bz2", ".zip" }.Any(extension => path.EndsWith(extension, StringComparison.OrdinalIgnoreCase));

    private static DateTimeOffset TruncateToSeconds(DateTimeOffset time)
    {
        var utc = time.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
    }
}
