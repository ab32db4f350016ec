using System.Runtime.InteropServices;

namespace VddkBuild.Archive;

/// <summary>
/// The two file-system calls .NET has no API for: creating a hard link, and setting a symlink's own mtime
/// (File.SetLastWriteTime would follow the link and change its target).
/// </summary>
internal static class UnixLinks
{
    private const int LinuxAtFdCwd = -100;
    private const int LinuxAtSymlinkNoFollow = 0x100;
    private const int MacAtFdCwd = -2;
    private const int MacAtSymlinkNoFollow = 0x20;

    public static bool HasHardLinks => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD();

    public static void CreateHardLink(string existingPath, string newPath)
    {
        if (link(existingPath, newPath) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"link('{existingPath}', '{newPath}') failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    /// <summary>Sets a symlink's own modification time; silently does nothing where the call is not available.</summary>
    public static void SetSymlinkModificationTime(string path, DateTimeOffset time)
    {
        int fdCwd, noFollow;
        if (OperatingSystem.IsLinux())
        {
            (fdCwd, noFollow) = (LinuxAtFdCwd, LinuxAtSymlinkNoFollow);
        }
        else if (OperatingSystem.IsMacOS())
        {
            (fdCwd, noFollow) = (MacAtFdCwd, MacAtSymlinkNoFollow);
        }
        else
        {
            return;
        }
        var seconds = time.ToUnixTimeSeconds();
        var times = new[] { new Timespec(seconds, 0), new Timespec(seconds, 0) };
        if (utimensat(fdCwd, path, times, noFollow) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"utimensat('{path}') failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly struct Timespec(long seconds, long nanoseconds)
    {
        public readonly long Seconds = seconds;
        public readonly long Nanoseconds = nanoseconds;
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code enabled for the whole engine for two calls.
    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int link(string oldpath, string newpath);

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int utimensat(int dirfd, string pathname, [In] Timespec[] times, int flags);
#pragma warning restore SYSLIB1054
}
