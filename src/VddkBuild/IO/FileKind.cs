using System.Runtime.InteropServices;

namespace VddkBuild.IO;

/// <summary>What a path names, symlinks followed, as stat(2) tells it; .NET's own file APIs do not tell a FIFO or a device from a file.</summary>
internal enum FileKindType
{
    /// <summary>Not known: not Linux, or a libc without statx. Callers go on as if it were a file.</summary>
    Unknown,
    Regular,
    Directory,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,

    /// <summary>Only when not followed (<see cref="FileKind.IsSymlink"/>).</summary>
    Symlink,

    /// <summary>stat failed; <see cref="FileKind.Errno"/> says why.</summary>
    Failed,
}

/// <summary>The kind of file a path leads to, or why it leads nowhere (errno: ENOENT, ELOOP, EACCES, ENOTDIR...).</summary>
internal readonly partial record struct FileKind(FileKindType Type, int Errno)
{
    public const int Enoent = 2, Eacces = 13, Enotdir = 20, Eloop = 40;

    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;

    /// <summary>What <paramref name="path"/> leads to (symlinks followed).</summary>
    public static FileKind Of(string path) => Read(path, 0);

    /// <summary>True when <paramref name="path"/> itself is a symbolic link (not followed).</summary>
    public static bool IsSymlink(string path) => Read(path, AtSymlinkNoFollow).Type == FileKindType.Symlink;

    /// <summary>How a kind reads in a message: "a FIFO (named pipe)", "a character device"...</summary>
    public string Describe() => Type switch
    {
        FileKindType.Fifo => "a FIFO (named pipe, or a pipe such as /dev/stdin when the input is piped)",
        FileKindType.CharacterDevice => "a character device (such as /dev/zero, /dev/urandom or a terminal)",
        FileKindType.BlockDevice => "a block device (a disk)",
        FileKindType.Socket => "a socket",
        FileKindType.Directory => "a directory",
        _ => "not a regular file",
    };

    private static FileKind Read(string path, int flags)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new FileKind(FileKindType.Unknown, 0);
        }
        var buffer = new byte[256];
        try
        {
            if (Statx(AtFdCwd, path, flags, StatxType, buffer) != 0)
            {
                return new FileKind(FileKindType.Failed, Marshal.GetLastPInvokeError());
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return new FileKind(FileKindType.Unknown, 0); // a libc without statx (glibc before 2.28, musl before 1.2.5)
        }
        if ((BitConverter.ToUInt32(buffer) & StatxType) == 0)
        {
            return new FileKind(FileKindType.Unknown, 0);
        }
        // struct statx: stx_mode (u16) at offset 28; S_IFMT 0170000.
        return (BitConverter.ToUInt16(buffer.AsSpan(28)) & 0xF000) switch
        {
            0x8000 => new FileKind(FileKindType.Regular, 0),
            0x4000 => new FileKind(FileKindType.Directory, 0),
            0x1000 => new FileKind(FileKindType.Fifo, 0),
            0x2000 => new FileKind(FileKindType.CharacterDevice, 0),
            0x6000 => new FileKind(FileKindType.BlockDevice, 0),
            0xC000 => new FileKind(FileKindType.Socket, 0),
            0xA000 => new FileKind(FileKindType.Symlink, 0),
            _ => new FileKind(FileKindType.Unknown, 0),
        };
    }

    // struct statx has the same layout on every Linux architecture (include/uapi/linux/stat.h).
    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int directoryFd, string path, int flags, uint mask, [Out] byte[] buffer);
}
