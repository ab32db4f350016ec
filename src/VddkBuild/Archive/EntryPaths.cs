using System.Globalization;
using System.Text;

namespace VddkBuild.Archive;

/// <summary>The path rules every entry must pass before a sink sees it.</summary>
internal static class EntryPaths
{
    public const string TopFolder = "vmware-vix-disklib-distrib";

    /// <summary>NAME_MAX of Linux file systems (ext4, xfs, overlayfs, tmpfs): the longest file name, in bytes.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>
    /// The longest path accepted, in bytes. Linux refuses paths of PATH_MAX (4096) bytes or more, and a runtime
    /// unpacks the layer below a folder of its own (containerd's snapshot folders are some 80 bytes): 256 are left for it.
    /// </summary>
    public const int MaxPathBytes = 4096 - 256;

    /// <summary>
    /// Normalises an archive member name: drops "./" and "." components, repeated and trailing slashes. Returns ""
    /// for the archive root itself ("./"). Rejects (VDDK1007) absolute names, ".." components and control
    /// characters, which could write outside the extraction folder or hide the real name in logs, and names no Linux
    /// file system can hold (a component over <see cref="MaxNameBytes"/>, a path over <see cref="MaxPathBytes"/>): no
    /// runtime could unpack the layer.
    /// </summary>
    public static string Normalize(string archivePath, string name)
    {
        if (name.Length == 0)
        {
            throw Escapes(archivePath, name, "the entry has an empty name");
        }
        foreach (var c in name)
        {
            if (char.IsControl(c))
            {
                throw Escapes(archivePath, name, $"the name contains the control character U+{(int)c:X4}");
            }
        }
        if (name[0] == '/')
        {
            throw Escapes(archivePath, name, "the name is an absolute path");
        }
        var builder = new StringBuilder(name.Length);
        foreach (var part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }
            if (part == "..")
            {
                throw Escapes(archivePath, name, "the name contains a '..' component");
            }
            var partBytes = Encoding.UTF8.GetByteCount(part);
            if (partBytes > MaxNameBytes)
            {
                throw TooLong(archivePath, name, $"its component '{Printable(part[..Math.Min(part.Length, 40)])}...' is {partBytes} bytes long, and a Linux file name has at most {MaxNameBytes}");
            }
            if (builder.Length > 0)
            {
                builder.Append('/');
            }
            builder.Append(part);
        }
        var path = builder.ToString();
        var pathBytes = Encoding.UTF8.GetByteCount(path);
        if (pathBytes > MaxPathBytes)
        {
            throw TooLong(archivePath, name, $"it is {pathBytes} bytes long, more than the {MaxPathBytes} a path in the image can have (Linux refuses paths of 4096 bytes, and the runtime unpacks the layer below a folder of its own)");
        }
        return path;
    }

    public static bool IsInsideTopFolder(string normalized) =>
        normalized == TopFolder || normalized.StartsWith(TopFolder + "/", StringComparison.Ordinal);

    public static string? Parent(string normalized)
    {
        var slash = normalized.LastIndexOf('/');
        return slash < 0 ? null : normalized[..slash];
    }

    public static string Display(string normalized) =>
        normalized.StartsWith(TopFolder + "/", StringComparison.Ordinal) ? normalized[(TopFolder.Length + 1)..] : normalized;

    private static VddkException Escapes(string archivePath, string name, string reason) => new(
        ErrorCodes.EntryEscapesTree,
        $"The archive entry '{Printable(name)}' in '{archivePath}' is unsafe: {reason}. An archive with such names could write outside the folder it is unpacked into; use the original VDDK archive from VMware/Broadcom, or repack it with relative paths under vmware-vix-disklib-distrib/.",
        name);

    private static VddkException TooLong(string archivePath, string name, string reason) => new(
        ErrorCodes.EntryEscapesTree,
        $"The archive entry '{Printable(name)}' in '{archivePath}' cannot be unpacked on Linux: {reason}. GNU tar fails on it with 'File name too long', and so would the container runtime unpacking the image; VMware's archives have short names: use the original VDDK archive, or repack it with shorter names.",
        name);

    /// <summary>
    /// Shows control characters as escapes so a message cannot be spoofed by them, and so the invisible ones that
    /// disguise a name: format characters (bidirectional overrides such as U+202E, zero-width spaces and joiners) and
    /// the line and paragraph separators some viewers break lines at.
    /// </summary>
    public static string Printable(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (char.IsControl(c) || char.GetUnicodeCategory(c) is UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
            {
                builder.Append($"\\u{(int)c:X4}");
            }
            else
            {
                builder.Append(c);
            }
        }
        return builder.ToString();
    }

    /// <summary>ASCII as it is , every other byte as \xNN.</summary>
    public static string EscapedBytes(ReadOnlySpan<byte> bytes)
    {
        var builder = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and < 0x7f)
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{b:x2}");
            }
        }
        return builder.ToString();
    }
}
