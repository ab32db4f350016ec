using System.Text;
using VddkBuild.Archive;
using VddkBuild.Images;
using VddkBuild.Layers;

namespace VddkBuild.Tests.Layers;

/// <summary>A VDDK-shaped entry list (no VMware code) fed straight to a sink, as the archive reader would.</summary>
internal static class VddkEntries
{
    public const string R = ImageSettings.TreeRoot;

    public static readonly DateTimeOffset Time = new(2023, 3, 29, 10, 15, 42, TimeSpan.Zero);

    public static List<(VddkEntry Entry, byte[]? Content)> Sample() =>
    [
        Dir(R, 0x1ED),
        Dir($"{R}/bin64", 0x1ED),
        FileEntry($"{R}/bin64/vmware-vdiskmanager", 0x1ED, Bytes("ELF manager", 5000)),
        Dir($"{R}/lib64", 0x1C0 /* 0700: must become 0705 */),
        FileEntry($"{R}/lib64/libvixDiskLib.so.8.0.1", 0x1ED, Bytes("ELF vixDiskLib 8.0.1", 40_000)),
        Link($"{R}/lib64/libvixDiskLib.so.8", "libvixDiskLib.so.8.0.1"),
        Link($"{R}/lib64/libvixDiskLib.so", "libvixDiskLib.so.8"),
        FileEntry($"{R}/lib64/libgcc_s.so.1", 0x180 /* 0600: must become 0604 */, Bytes("ELF gcc", 3000)),
        Hardlink($"{R}/lib64/libgcc_s-copy.so.1", $"{R}/lib64/libgcc_s.so.1"),
        FileEntry($"{R}/lib64/empty.txt", 0x1A4, []),
    ];

    public static (VddkEntry, byte[]?) Dir(string path, int mode, DateTimeOffset? time = null) =>
        (new VddkEntry(path, VddkEntryKind.Directory, mode, time ?? Time, 0, null), null);

    public static (VddkEntry, byte[]?) Link(string path, string target, DateTimeOffset? time = null) =>
        (new VddkEntry(path, VddkEntryKind.Symlink, 0x1FF, time ?? Time, 0, target), null);

    public static (VddkEntry, byte[]?) Hardlink(string path, string target, DateTimeOffset? time = null) =>
        (new VddkEntry(path, VddkEntryKind.Hardlink, 0x1A4, time ?? Time, 0, target), null);

    public static (VddkEntry, byte[]?) FileEntry(string path, int mode, byte[] content, DateTimeOffset? time = null) =>
        (new VddkEntry(path, VddkEntryKind.File, mode, time ?? Time, content.Length, null), content);

    /// <summary>Deterministic pseudo-binary content: a repeating text with noise, compressible like code.</summary>
    public static byte[] Bytes(string seed, int length)
    {
        var bytes = new byte[length];
        var pattern = Encoding.ASCII.GetBytes(seed);
        var random = new Random(pattern.Sum(b => b) * 31 + length);
        for (int i = 0; i < length; i++)
        {
            bytes[i] = i % 7 == 0 ? (byte)random.Next(256) : pattern[i % pattern.Length];
        }
        return bytes;
    }

    public static async Task<LayerBlob> WriteLayerAsync(string directory, IEnumerable<(VddkEntry Entry, byte[]? Content)> entries, LayerWriterOptions? options = null)
    {
        await using var writer = new LayerWriter(directory, options);
        foreach (var (entry, content) in entries)
        {
            using var stream = content is null ? null : new MemoryStream(content);
            await writer.WriteEntryAsync(entry, stream, CancellationToken.None);
        }
        return await writer.CompleteAsync(CancellationToken.None);
    }
}
