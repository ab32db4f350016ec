namespace VddkBuild.Archive;

/// <summary>
/// What macOS adds when it archives files: AppleDouble "._name" companions (resource forks, Finder info,
/// quarantine flags), extended attributes as pax records, and "__MACOSX/" folders in zips made by Finder. None of it
/// belongs in the image; all of it is dropped.
/// </summary>
internal static class MacMetadata
{
    public static bool IsAppleDouble(string normalizedPath)
    {
        var lastSlash = normalizedPath.LastIndexOf('/');
        return normalizedPath.AsSpan(lastSlash + 1).StartsWith("._", StringComparison.Ordinal);
    }

    public static bool IsMacOsxFolder(string normalizedPath) =>
        normalizedPath == "__MACOSX" || normalizedPath.StartsWith("__MACOSX/", StringComparison.Ordinal);

    /// <summary>Pax records holding extended attributes, ACLs or file flags (libarchive/bsdtar and star/GNU tar spellings).</summary>
    public static bool IsAttributeRecord(string paxKey) =>
        paxKey.StartsWith("LIBARCHIVE.", StringComparison.Ordinal)
        || paxKey.StartsWith("SCHILY.xattr.", StringComparison.Ordinal)
        || paxKey.StartsWith("SCHILY.acl.", StringComparison.Ordinal)
        || paxKey.StartsWith("SCHILY.fflags", StringComparison.Ordinal);
}
