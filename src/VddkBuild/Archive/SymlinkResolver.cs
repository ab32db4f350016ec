namespace VddkBuild.Archive;

/// <summary>How following a path through the archive's own symlinks ended.</summary>
internal enum ResolutionOutcome
{
    RegularFile,
    Directory,
    Missing,
    NotADirectory,
    Loop,
    Escapes,
}

/// <param name="Chain">What was walked, for messages: the start path, then every link target as written.</param>
internal sealed record Resolution(ResolutionOutcome Outcome, string? FinalPath, IReadOnlyList<string> Chain)
{
    public string Describe()
    {
        var end = Outcome switch
        {
            ResolutionOutcome.RegularFile => null,
            ResolutionOutcome.Directory => "(a directory, not a file)",
            ResolutionOutcome.Missing => "(missing)",
            ResolutionOutcome.NotADirectory => "(a path component is a file, not a directory)",
            ResolutionOutcome.Loop => "(loop)",
            ResolutionOutcome.Escapes => "(outside vmware-vix-disklib-distrib)",
            _ => null,
        };
        return string.Join(" -> ", end is null ? Chain : [.. Chain, end]);
    }
}

/// <summary>
/// Resolves a path inside the archive the way the kernel will inside the container: every component, including
/// symlinked directories, with a hop limit like Linux's (40) and loop detection. As for the kernel, a file followed
/// by anything, even a trailing slash, "." or "..", is not a directory. ".." above the top folder counts
/// as escaping the tree: in the image the tree is copied to /opt, so nothing outside it can be relied on.
/// </summary>
internal sealed class SymlinkResolver(IReadOnlyDictionary<string, VddkEntry> entries)
{
    private const int MaxHops = 40;

    public Resolution Resolve(string path)
    {
        var chain = new List<string> { EntryPaths.Display(path) };
        var pending = new LinkedList<string>(path.Split('/'));
        var resolved = new List<string>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        var hops = 0;
        VddkEntry? current = null;

        while (pending.Count > 0)
        {
            var part = pending.First!.Value;
            pending.RemoveFirst();
            if (current is { Kind: VddkEntryKind.File or VddkEntryKind.Hardlink } && (part.Length == 0 || part == "." || part == ".."))
            {
                // "file/", "file/." and "file/..": the kernel fails them with ENOTDIR rather than ignoring the rest.
                return new Resolution(ResolutionOutcome.NotADirectory, string.Join('/', resolved), chain);
            }
            if (part.Length == 0 || part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                if (resolved.Count <= 1)
                {
                    return new Resolution(ResolutionOutcome.Escapes, null, chain);
                }
                resolved.RemoveAt(resolved.Count - 1);
                current = entries[string.Join('/', resolved)];
                continue;
            }
            if (current is { Kind: VddkEntryKind.File or VddkEntryKind.Hardlink })
            {
                return new Resolution(ResolutionOutcome.NotADirectory, string.Join('/', resolved), chain);
            }
            resolved.Add(part);
            var joined = string.Join('/', resolved);
            if (resolved.Count == 1 && part != EntryPaths.TopFolder)
            {
                return new Resolution(ResolutionOutcome.Escapes, null, chain);
            }
            if (!entries.TryGetValue(joined, out current))
            {
                return new Resolution(ResolutionOutcome.Missing, joined, chain);
            }
            if (current.Kind == VddkEntryKind.Symlink)
            {
                var target = current.LinkTarget ?? string.Empty;
                chain.Add(target);
                // The same link reached with the same remainder to resolve can only repeat forever.
                if (++hops > MaxHops || !visited.Add(joined + "\0" + string.Join('/', pending)))
                {
                    return new Resolution(ResolutionOutcome.Loop, joined, chain);
                }
                if (target.StartsWith('/'))
                {
                    return new Resolution(ResolutionOutcome.Escapes, null, chain);
                }
                resolved.RemoveAt(resolved.Count - 1);
                current = resolved.Count == 0 ? null : entries[string.Join('/', resolved)];
                foreach (var piece in target.Split('/').Reverse())
                {
                    pending.AddFirst(piece);
                }
            }
        }

        var finalPath = string.Join('/', resolved);
        return current?.Kind switch
        {
            VddkEntryKind.File or VddkEntryKind.Hardlink => new Resolution(ResolutionOutcome.RegularFile, finalPath, chain),
            VddkEntryKind.Directory => new Resolution(ResolutionOutcome.Directory, finalPath, chain),
            _ => new Resolution(ResolutionOutcome.Missing, finalPath, chain),
        };
    }
}
