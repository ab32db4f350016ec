namespace VddkBuild.Archive;

/// <summary>
/// Receives the archive's entries in archive order while it is read once. Writers (layer, extraction) write to a
/// temporary name and only publish after <see cref="VddkArchiveReader.ReadAsync"/> returned: the tree-wide checks
/// (symlink chains, the libvixDiskLib.so chain, version) run after the last entry.
/// </summary>
public interface IVddkEntrySink
{
    /// <param name="entry">The entry; parents are always delivered before children. A directory the archive lists
    /// after its children comes twice: first a synthesised stand-in (before the children), then the archive's entry,
    /// whose mode and time replace the stand-in's.</param>
    /// <param name="content">For files, a stream of exactly <see cref="VddkEntry.Length"/> bytes, valid only during the
    /// call; null for other kinds.</param>
    ValueTask WriteEntryAsync(VddkEntry entry, Stream? content, CancellationToken cancellationToken);
}
