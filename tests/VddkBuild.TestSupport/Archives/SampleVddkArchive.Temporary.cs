// TEMPORARY (infra branch only): a minimal stand-in for the archive helper's SampleVddkArchive, so the Fixtures
// console, build.sh demo and the infrastructure self-tests compile and run before that branch is merged.
// The lead deletes this file when merging the real VddkBuild.TestSupport.Archives.SampleVddkArchive.
using System.Formats.Tar;
using System.IO.Compression;

namespace VddkBuild.TestSupport.Archives;

public sealed record SampleVddkArchiveOptions
{
    public string Version { get; init; } = "8.0.1";

    public string BuildNumber { get; init; } = "21562716";

    public long TargetUnpackedBytes { get; init; } = 70L * 1024 * 1024;

    public int Seed { get; init; } = 1;
}

public static class SampleVddkArchive
{
    public static void Write(string path, SampleVddkArchiveOptions options)
    {
        const string top = "vmware-vix-disklib-distrib/";
        var major = options.Version.Split('.')[0];
        var random = new Random(options.Seed);
        var mtime = new DateTimeOffset(2023, 5, 1, 0, 0, 0, TimeSpan.Zero);
        var temp = path + ".tmp";
        using (var file = File.Create(temp))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gzip, TarEntryFormat.Pax))
        {
            void Dir(string name) => tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, top + name) { Mode = (UnixFileMode)0b111_101_101, ModificationTime = mtime });
            void Link(string name, string target) => tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, top + name) { LinkName = target, Mode = (UnixFileMode)0b111_111_111, ModificationTime = mtime });
            void Data(string name, long size, int mode)
            {
                var bytes = new byte[size];
                random.NextBytes(bytes);
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, top + name) { Mode = (UnixFileMode)mode, ModificationTime = mtime, DataStream = new MemoryStream(bytes) });
            }

            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, top) { Mode = (UnixFileMode)0b111_101_101, ModificationTime = mtime });
            foreach (var dir in new[] { "bin64/", "doc/", "include/", "lib32/", "lib64/" })
            {
                Dir(dir);
            }
            Data("doc/README.txt", 4096, 0b110_100_100);
            Data("include/vixDiskLib.h", 8192, 0b110_100_100);
            Data("bin64/vixDiskCheck", 65536, 0b111_101_101);
            Data($"lib64/libvixDiskLib.so.{options.Version}", 1024 * 1024, 0b111_101_101);
            Link($"lib64/libvixDiskLib.so.{major}", $"libvixDiskLib.so.{options.Version}");
            Link("lib64/libvixDiskLib.so", $"libvixDiskLib.so.{major}");
            Data("lib64/libgcc_s.so.1", 128 * 1024, 0b110_100_100);
            Link("lib64/libgcc_s.so", "libgcc_s.so.1");
            var rest = Math.Max(0, options.TargetUnpackedBytes - (1024 * 1024) - (128 * 1024) - 4096 - 8192 - 65536);
            Data("lib64/libvim-types.so", rest, 0b111_101_101);
        }
        File.Move(temp, path, overwrite: true);
    }
}
