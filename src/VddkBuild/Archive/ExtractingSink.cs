using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// Writes entries below a root folder as the archive describes them: symlinks as symlinks, hard links as hard
/// links, the archive's modes plus world-read (files) and world-read/execute (directories), as the image does, and
/// the archive's mtimes. Directory modes and times are applied last, deepest first, because writing children
/// would change the times and a read-only directory could not take children.
/// </summary>
internal sealed class ExtractingSink(string root) : IVddkEntrySink
{
    private const int OtherRead = 0x4;        // o+r
    private const int OtherReadExecute = 0x5; // o+rx
    private readonly Dictionary<string, VddkEntry> _directories = new(StringComparer.Ordinal); // the last delivery wins

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask WriteEntryAsync(VddkEntry entry, Stream? content, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var path = PathOf(entry.Path);
        switch (entry.Kind)
        {
            case VddkEntryKind.Directory:
                Directory.CreateDirectory(path);
                _directories[entry.Path] = entry;
                break;
            case VddkEntryKind.File:
                var options = new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    Share = FileShare.None,
                    Options = FileOptions.Asynchronous,
                    BufferSize = 0,
                    PreallocationSize = entry.Length,
                };
                await using (var file = new FileStream(path, options))
                {
                    if (content is not null)
                    {
                        await content.CopyToAsync(file, 256 * 1024, cancellationToken).ConfigureAwait(false);
                    }
                }
                SetMode(path, entry.Mode | OtherRead);
                File.SetLastWriteTimeUtc(path, entry.ModificationTime.UtcDateTime);
                break;
            case VddkEntryKind.Symlink:
                File.CreateSymbolicLink(path, entry.LinkTarget!);
                UnixLinks.SetSymlinkModificationTime(path, entry.ModificationTime);
                break;
            case VddkEntryKind.Hardlink:
                var existing = PathOf(entry.LinkTarget!);
                if (UnixLinks.HasHardLinks)
                {
                    UnixLinks.CreateHardLink(existing, path);
                }
                else
                {
                    File.Copy(existing, path); // no POSIX link() here; the content is what matters
                }
                break;
        }
    }

    /// <summary>Applies directory modes and times once every entry has been written.</summary>
    public void Complete(CancellationToken cancellationToken)
    {
        foreach (var directory in _directories.Values.OrderByDescending(d => d.Path.Count(c => c == '/')))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var path = PathOf(directory.Path);
            SetMode(path, directory.Mode | OtherReadExecute);
            Directory.SetLastWriteTimeUtc(path, directory.ModificationTime.UtcDateTime);
        }
    }

    private string PathOf(string entryPath)
    {
        // Entry paths were validated (relative, no "..", nothing below a symlink); this guards against a future change.
        var full = Path.GetFullPath(Path.Combine(root, entryPath));
        if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Entry path '{entryPath}' resolves outside the extraction folder.");
        }
        return full;
    }

    private static void SetMode(string path, int mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, (UnixFileMode)mode);
        }
    }
}
