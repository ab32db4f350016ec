namespace VddkBuild.Images;

public enum ImageSourceKind
{
    /// <summary><c>oci:DIR[:tag]</c>: an OCI image layout folder.</summary>
    OciLayout,

    /// <summary><c>oci-archive:FILE[:tag]</c>: a tar of an OCI image layout.</summary>
    OciArchive,

    /// <summary>Anything else: an image reference for a registry, kept as written.</summary>
    Registry,
}

/// <summary>
/// A base image reference as users write it for skopeo/podman: <c>oci:DIR[:tag]</c>, <c>oci-archive:FILE[:tag]</c>,
/// or a registry reference. As in skopeo, the path ends at the first ':' after the prefix (a Windows drive letter
/// such as <c>C:\</c> excepted), so the tag may itself contain ':'.
/// </summary>
public sealed record ImageSourceReference(ImageSourceKind Kind, string Raw, string? Path, string? Tag)
{
    public const string OciPrefix = "oci:";
    public const string OciArchivePrefix = "oci-archive:";

    public static ImageSourceReference Parse(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        var text = reference.Trim();
        if (text.Length == 0)
        {
            throw new VddkException(ErrorCodes.BaseReferenceInvalid,
                "The base image reference is empty. Write a registry reference (registry.access.redhat.com/ubi9/ubi-minimal), oci:DIR[:tag] or oci-archive:FILE[:tag].");
        }
        if (text.StartsWith(OciArchivePrefix, StringComparison.Ordinal))
        {
            return Local(ImageSourceKind.OciArchive, text, text[OciArchivePrefix.Length..]);
        }
        if (text.StartsWith(OciPrefix, StringComparison.Ordinal))
        {
            return Local(ImageSourceKind.OciLayout, text, text[OciPrefix.Length..]);
        }
        return new ImageSourceReference(ImageSourceKind.Registry, text, null, null);
    }

    /// <summary>
    /// Resolves a relative local path against <paramref name="baseDirectory"/> (an MSBuild project folder rather
    /// than the process's working folder). Registry references and absolute paths are returned unchanged.
    /// </summary>
    public ImageSourceReference RelativeTo(string baseDirectory) =>
        Kind == ImageSourceKind.Registry || System.IO.Path.IsPathRooted(Path) ? this : this with { Path = System.IO.Path.GetFullPath(Path!, baseDirectory) };

    public override string ToString() => Raw;

    private static ImageSourceReference Local(ImageSourceKind kind, string raw, string rest)
    {
        int searchFrom = rest.Length >= 3 && char.IsAsciiLetter(rest[0]) && rest[1] == ':' && rest[2] is '\\' or '/' ? 2 : 0;
        int colon = rest.IndexOf(':', searchFrom);
        var path = colon < 0 ? rest : rest[..colon];
        var tag = colon < 0 ? null : rest[(colon + 1)..];
        if (path.Length == 0)
        {
            throw new VddkException(ErrorCodes.BaseReferenceInvalid,
                $"'{raw}' names no path. Write {(kind == ImageSourceKind.OciLayout ? "oci:DIR[:tag]" : "oci-archive:FILE[:tag]")}.", raw);
        }
        if (tag is not null && (tag.Length == 0 || tag.Any(char.IsWhiteSpace)))
        {
            throw new VddkException(ErrorCodes.BaseReferenceInvalid,
                $"'{raw}' has an empty or malformed tag after ':'. Write the tag as it appears in the layout's index.json (org.opencontainers.image.ref.name), or omit it.", raw);
        }
        return new ImageSourceReference(kind, raw, path, tag);
    }
}
