namespace VddkBuild.Archive;

/// <summary>
/// Limits that protect against archive bombs. The defaults are far above any real VDDK (about 70 MB unpacked,
/// around 400 entries) and only stop archives that would fill a disk or memory.
/// </summary>
public sealed record VddkArchiveReadOptions
{
    public const long DefaultMaxEntryBytes = 4L * 1024 * 1024 * 1024;
    public const long DefaultMaxTotalBytes = 16L * 1024 * 1024 * 1024;
    public const int DefaultMaxEntryCount = 200_000;

    public static VddkArchiveReadOptions Default { get; } = new();

    /// <summary>Largest single file (uncompressed bytes).</summary>
    public long MaxEntryBytes { get; init; } = DefaultMaxEntryBytes;

    /// <summary>Largest sum of all file sizes (uncompressed bytes).</summary>
    public long MaxTotalBytes { get; init; } = DefaultMaxTotalBytes;

    /// <summary>Most entries (of any kind) the archive may hold.</summary>
    public int MaxEntryCount { get; init; } = DefaultMaxEntryCount;

    /// <summary>
    /// The VDDK 9 field fix for older MTV releases, whose nbdkit loads lib64/libvixDiskLib.so.8: the tree gets the
    /// relative link <c>lib64/libvixDiskLib.so.8 -> libvixDiskLib.so.9.x.y.z</c> (the real file) when the archive is
    /// VDDK 9 or later and has no libvixDiskLib.so.8 of its own. On an older VDDK it adds nothing (warning VDDK1904).
    /// Changes the tree, so it is part of the layer's identity.
    /// </summary>
    public bool AddSoname8Link { get; init; }

    /// <summary>
    /// Decompress on a thread of its own, a few buffers ahead of the parsing and hashing (two cores at work); false
    /// does it all on the reading thread. Changes nothing in what is read or checked.
    /// </summary>
    public bool ReadAhead { get; init; } = true;
}
