namespace VddkBuild.Archive;

/// <summary>What an archive format says about one member, before the VDDK rules are applied.</summary>
internal enum SourceEntryType
{
    Directory,
    File,
    Symlink,
    Hardlink,
    CharacterDevice,
    BlockDevice,
    Fifo,
    Unsupported,
}

/// <param name="Name">The member name exactly as stored.</param>
/// <param name="TypeDescription">Human name of the stored type, for messages about unsupported ones.</param>
/// <param name="MacAttributeRecords">macOS extended-attribute records attached to the entry (dropped).</param>
/// <param name="Content">For files, the member's content; read at most <paramref name="Length"/> bytes.</param>
internal sealed record ArchiveSourceEntry(
    string Name,
    SourceEntryType Type,
    string TypeDescription,
    int Mode,
    DateTimeOffset ModificationTime,
    long Length,
    string? LinkName,
    int MacAttributeRecords,
    Stream? Content);

/// <summary>One archive format's members, in archive order. Exceptions it throws mean the archive is damaged.</summary>
internal interface IArchiveEntrySource : IAsyncDisposable
{
    ValueTask<ArchiveSourceEntry?> NextAsync(CancellationToken cancellationToken);

    /// <summary>Called after the last member: checks what can only be checked at the end (e.g. the gzip trailer).</summary>
    ValueTask CompleteAsync(CancellationToken cancellationToken);
}
