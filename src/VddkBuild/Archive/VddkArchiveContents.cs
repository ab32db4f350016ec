namespace VddkBuild.Archive;

/// <summary>What reading a VDDK archive found, after every check passed.</summary>
/// <param name="Version">VDDK version, e.g. "8.0.1" or "9.0.0.0", confirmed by lib64/libvixDiskLib.so.&lt;version&gt;.</param>
/// <param name="BuildNumber">Build number from the file name, e.g. "21562716"; null when the name does not carry it.</param>
/// <param name="Entries">All entries delivered to the sink, in the order delivered.</param>
/// <param name="NewestModificationTime">Largest mtime of any entry (before clamping); basis for a reproducible created time.</param>
/// <param name="DroppedMacMetadataCount">AppleDouble entries and xattr pax records dropped.</param>
public sealed record VddkArchiveContents(
    string Version,
    string? BuildNumber,
    IReadOnlyList<VddkEntry> Entries,
    DateTimeOffset NewestModificationTime,
    int DroppedMacMetadataCount);
