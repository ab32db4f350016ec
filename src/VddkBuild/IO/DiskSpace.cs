using System.Globalization;

namespace VddkBuild.IO;

/// <summary>
/// What a "No space left on device" needs to say to be acted on: how much the file system has free and how much the
/// write needs, so that a CI job or a pod's emptyDir (often a few hundred MB) can be sized, or the folder moved.
/// </summary>
internal static class DiskSpace
{
    private const int Enospc = 28, Edquot = 122;

    /// <summary>True for a write that failed because the file system (or the user's quota) is full.</summary>
    public static bool IsFull(Exception ex) =>
        ex is IOException io && (io.HResult is Enospc or Edquot
            // .NET reports a failed preallocation (FileStreamOptions.PreallocationSize) with its own HResult and this text.
            || io.Message.Contains("disk was full", StringComparison.Ordinal));

    /// <summary>Bytes free for an unprivileged user on the file system that holds <paramref name="path"/> (or would), or null.</summary>
    public static long? Available(string path)
    {
        try
        {
            var existing = Path.GetFullPath(path);
            while (!Directory.Exists(existing))
            {
                existing = Path.GetDirectoryName(existing);
                if (existing is null)
                {
                    return null;
                }
            }
            return new DriveInfo(existing).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>
    /// " The file system of 'folder' has 1.2 MiB free; this needs about 20.3 MiB. Free space there, or set Property to a
    /// folder on a larger file system." for a full file system; empty for any other failure.
    /// </summary>
    /// <param name="needed">The size of what was being written, when known.</param>
    /// <param name="property">The MSBuild property that moves the folder.</param>
    public static string Shortfall(Exception ex, string folder, long? needed, string property)
    {
        if (!IsFull(ex))
        {
            return string.Empty;
        }
        var free = Available(folder);
        var has = free is { } f ? $" has {Size(f)} free" : " is full";
        var needs = needed is { } n ? $"; this needs about {Size(n)}" : string.Empty;
        return $" The file system of '{folder}'{has}{needs}. Free space there, or set {property} to a folder on a larger file system.";
    }

    /// <summary>1536 -> "1.5 KiB", in binary units as df -h shows them.</summary>
    public static string Size(long bytes)
    {
        string[] units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? $"{bytes} bytes" : value.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[unit];
    }
}
