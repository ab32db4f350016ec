namespace VddkBuild.Archive;

public enum VddkEntryKind
{
    Directory,
    File,
    Symlink,
    Hardlink,
}

/// <summary>
/// One validated entry of a VDDK archive, as it will appear in the image and in an extracted tree.
/// </summary>
/// <param name="Path">
/// Normalised relative path without leading "./" or trailing "/", always starting with
/// <c>vmware-vix-disklib-distrib</c> (the image puts it at <c>/vmware-vix-disklib-distrib/...</c>).
/// </param>
/// <param name="Kind">Entry type; devices, fifos and sockets never get here (they are rejected).</param>
/// <param name="Mode">Permission bits (07777) exactly as in the archive; consumers add o+r / o+rx themselves.</param>
/// <param name="ModificationTime">mtime from the archive (whole seconds, UTC).</param>
/// <param name="Length">Content length for files, 0 otherwise.</param>
/// <param name="LinkTarget">
/// Symlink: the target exactly as written in the archive (relative, validated to stay inside the tree).
/// Hardlink: the normalised path of the earlier entry it links to (same form as <paramref name="Path"/>).
/// </param>
/// <param name="Synthesized">True for a parent directory the archive did not list, added so the tree is complete.</param>
public sealed record VddkEntry(
    string Path,
    VddkEntryKind Kind,
    int Mode,
    DateTimeOffset ModificationTime,
    long Length,
    string? LinkTarget,
    bool Synthesized = false);
