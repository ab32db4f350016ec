using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Layers;

/// <summary>
/// Remembers the sha256 of an archive file together with the file's identity (device, inode, size, modification and
/// change times, as git's index does), so that a build whose archive has not been touched since the last one does not
/// read it at all (about a second for a 1.5 GB archive). Any change to the file changes its ctime, which no user
/// can set back; a file changed less than <see cref="FreshFileAge"/> before it was hashed is not remembered, since a
/// second change within the file system's timestamp granularity could look the same. Linux only (statx); elsewhere
/// every build hashes the file.
/// </summary>
internal static partial class ArchiveDigestMemo
{
    /// <summary>Memos kept (most recently written first); one per archive path ever built.</summary>
    public const int Keep = 16;

    /// <summary>Files changed more recently than this when hashed are hashed again next time.</summary>
    public static readonly TimeSpan FreshFileAge = TimeSpan.FromSeconds(2);

    private static readonly JsonSerializerOptions Json = new() { TypeInfoResolver = MemoJsonContext.Default };

    /// <summary>The archive's sha256: remembered when its identity is unchanged, otherwise read and (if stable) remembered.</summary>
    /// <param name="memoDirectory">Where the memo files live (a folder of their own under the layer cache).</param>
    /// <param name="freshAge">Defaults to <see cref="FreshFileAge"/>.</param>
    /// <param name="deferWrite">Write a new memo in the background (see <see cref="ArchiveDigestLookup.Recorded"/>) instead of before returning.</param>
    /// <summary>True when <see cref="GetAsync"/> would answer from a memo, without reading the file.</summary>
    public static bool IsRemembered(string archivePath, string memoDirectory)
    {
        var fullPath = Path.GetFullPath(archivePath);
        return FileIdentity.TryRead(fullPath) is { } identity && Read(MemoPath(fullPath, memoDirectory)) is { } memo
            && memo.Path == fullPath && memo.Identity == identity && Digest.TryParse(memo.Digest, out _);
    }

    private static string MemoPath(string fullPath, string memoDirectory) =>
        Path.Combine(memoDirectory, "archive-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(fullPath)))[..32] + ".json");

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<ArchiveDigestLookup> GetAsync(string archivePath, string memoDirectory, Func<string, CancellationToken, Task<Digest>> hash, CancellationToken cancellationToken, TimeSpan? freshAge = null, bool deferWrite = false)
    {
        var fullPath = Path.GetFullPath(archivePath);
        var memoPath = MemoPath(fullPath, memoDirectory);
        var before = FileIdentity.TryRead(fullPath);
        if (before is not null && Read(memoPath) is { } memo && memo.Path == fullPath && memo.Identity == before && Digest.TryParse(memo.Digest, out var remembered))
        {
            return new ArchiveDigestLookup(remembered, true, Task.CompletedTask);
        }

        var digest = await hash(fullPath, cancellationToken).ConfigureAwait(false);
        var after = FileIdentity.TryRead(fullPath);
        var recorded = Task.CompletedTask;
        if (before is not null && after == before && !before.Value.ChangedWithin(freshAge ?? FreshFileAge))
        {
            var fresh = new Memo { Path = fullPath, Identity = before.Value, Digest = digest.Value };
            if (deferWrite)
            {
                recorded = Task.Run(() => Write(memoPath, fresh), CancellationToken.None);
            }
            else
            {
                Write(memoPath, fresh);
            }
        }
        return new ArchiveDigestLookup(digest, false, recorded);
    }

    private static Memo? Read(string memoPath)
    {
        try
        {
            return JsonSerializer.Deserialize<Memo>(File.ReadAllBytes(memoPath), Json);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            return null; // missing or unreadable: hash the archive
        }
    }

    private static void Write(string memoPath, Memo memo)
    {
        var temp = LayerCache.TemporaryPathFor(memoPath);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(memoPath)!);
            File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(memo, MemoWriteContext.Default.Memo));
            File.Move(temp, memoPath, overwrite: true);
            foreach (var old in new DirectoryInfo(Path.GetDirectoryName(memoPath)!).GetFiles("archive-*.json").OrderByDescending(f => f.LastWriteTimeUtc).Skip(Keep))
            {
                old.Delete();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (Exception inner) when (inner is IOException or UnauthorizedAccessException) { /* only a memo */ }
        }
    }

    internal sealed class Memo
    {
        public string Path { get; init; } = "";
        public FileIdentity Identity { get; init; }
        public string Digest { get; init; } = "";
    }

    [JsonSerializable(typeof(Memo))]
    private sealed partial class MemoJsonContext : JsonSerializerContext
    {
    }

    /// <summary>Writing only: generated code that writes the memo without building the metadata reading needs.</summary>
    [JsonSourceGenerationOptions(GenerationMode = JsonSourceGenerationMode.Serialization)]
    [JsonSerializable(typeof(Memo))]
    private sealed partial class MemoWriteContext : JsonSerializerContext
    {
    }
}

/// <param name="Remembered">Taken from a memo, without reading the file.</param>
/// <param name="Recorded">Completes when a new memo is written (or could not be: a memo is only a shortcut); never faults.</param>
internal sealed record ArchiveDigestLookup(Digest Digest, bool Remembered, Task Recorded);

/// <summary>What identifies a file's content without reading it: device, inode, size, mtime and ctime (nanoseconds).</summary>
internal readonly partial record struct FileIdentity(ulong Device, ulong Inode, long Size, long ModifiedNs, long ChangedNs)
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1, StatxMode = 0x2, StatxMtime = 0x40, StatxCtime = 0x80, StatxIno = 0x100, StatxSize = 0x200;
    private const uint Needed = StatxMtime | StatxCtime | StatxIno | StatxSize;

    /// <summary>True when the file was modified or changed less than <paramref name="age"/> ago (or in the future).</summary>
    public bool ChangedWithin(TimeSpan age)
    {
        var now = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100L; // nanoseconds, not truncated to a coarser unit
        var newest = Math.Max(ModifiedNs, ChangedNs);
        return now - newest < age.Ticks * 100L;
    }

    /// <summary>The identity of a regular file (symlinks followed), or null where statx is not available or fails.</summary>
    public static FileIdentity? TryRead(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        var buffer = new byte[256];
        try
        {
            if (Statx(AtFdCwd, path, 0, StatxType | StatxMode | Needed, buffer) != 0)
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null; // a libc without statx (glibc before 2.28, musl before 1.2.5)
        }
        var span = buffer.AsSpan();
        var mask = BitConverter.ToUInt32(span);
        var mode = BitConverter.ToUInt16(span[28..]);
        if ((mask & Needed) != Needed || (mode & 0xF000) != 0x8000)
        {
            return null; // not every field known, or not a regular file
        }
        static long Nanoseconds(ReadOnlySpan<byte> timestamp) => (BitConverter.ToInt64(timestamp) * 1_000_000_000L) + BitConverter.ToUInt32(timestamp[8..]);
        var device = ((ulong)BitConverter.ToUInt32(span[136..]) << 32) | BitConverter.ToUInt32(span[140..]);
        return new FileIdentity(device, BitConverter.ToUInt64(span[32..]), BitConverter.ToInt64(span[40..]), Nanoseconds(span[112..]), Nanoseconds(span[96..]));
    }

    // struct statx has the same layout on every Linux architecture (include/uapi/linux/stat.h).
    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directoryFd, string path, int flags, uint mask, [Out] byte[] buffer);
}
