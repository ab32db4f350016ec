using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Publishing;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;

namespace VddkBuild.IntegrationTests.Publishing;

/// <summary>
/// The VDDK layer holds exactly the archive's tree: every symlink with the same target, every hardlink, every file
/// with the same bytes, modes kept plus o+r (files) and o+rx (directories). Both sides are read with the BCL's
/// TarReader, independent of the project's own tar writer.
/// </summary>
public sealed class LayerMatchesArchiveTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-layer-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    /// <summary>Each shape with the archive-as-layer shortcut allowed (VMware-shaped archives then are the layer) and turned off.</summary>
    public static TheoryData<string, bool> Shapes => new()
    {
        { "vddk8", true }, { "vddk8", false }, { "vddk9", true }, { "vddk9", false }, { "pax-long-names-no-dirs", true },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task Every_archive_entry_is_in_the_layer_with_the_same_type_target_content_and_readable_mode(string shape, bool archiveAsLayer)
    {
        var archive = shape switch
        {
            "vddk8" => SampleVddkArchive.WriteTo(_work, SampleVddkArchiveOptions.Small),
            "vddk9" => SampleVddkArchive.WriteTo(_work, SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 2_000_000, DocumentationPages = 20, AddVddk8CompatibilityLink = true }),
            _ => WriteLongNameArchive(),
        };
        await using var baseSource = new OciLayoutSource(StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Location, "latest");

        var result = await VddkImagePipeline.BuildAsync(new VddkImageRequest { ArchivePath = archive, BaseSource = baseSource, WorkDirectory = Path.Combine(_work, "obj"), UseArchiveAsLayer = archiveAsLayer },
            NullBuildLog.Instance, CancellationToken.None);

        var inArchive = Read(archive);
        var inLayer = Read(result.Image.VddkLayer.FilePath);
        // The archive itself is the layer only when allowed and when it qualifies (the pax shape lacks directory entries).
        var verbatim = File.ReadAllBytes(archive).AsSpan().SequenceEqual(File.ReadAllBytes(result.Image.VddkLayer.FilePath));
        Assert.Equal(archiveAsLayer && shape != "pax-long-names-no-dirs", verbatim);
        Assert.All(inLayer.Keys, path => Assert.StartsWith("vmware-vix-disklib-distrib", path));
        foreach (var (path, entry) in inArchive)
        {
            Assert.True(inLayer.TryGetValue(path, out var layered), $"{path} is missing from the layer");
            Assert.Equal(entry.Type, layered!.Type);
            Assert.Equal(entry.LinkName, layered.LinkName);
            Assert.Equal(entry.Sha256, layered.Sha256);
            var readable = entry.Type == TarEntryType.Directory ? 0b101 : entry.Type == TarEntryType.SymbolicLink ? 0 : 0b100;
            if (entry.Type != TarEntryType.SymbolicLink)
            {
                Assert.Equal(entry.Mode | readable, layered.Mode);
            }
            // The written layer is root-owned; the archive as the layer keeps the archive's owners.
            Assert.Equal(verbatim ? entry.Uid : 0, layered.Uid);
            Assert.Equal(verbatim ? entry.Gid : 0, layered.Gid);
        }
        var symlinks = inArchive.Values.Count(e => e.Type == TarEntryType.SymbolicLink);
        Assert.True(symlinks >= (shape == "pax-long-names-no-dirs" ? 3 : 10), $"the fixture should carry the VDDK's symlink chains, found {symlinks}");
    }

    private string WriteLongNameArchive()
    {
        var deep = string.Join('/', Enumerable.Repeat("a-rather-long-folder-name-for-testing", 8));
        var builder = new VddkArchiveBuilder { Format = TarEntryFormat.Pax, DirectoryEntries = false }.AddMinimalVddk();
        builder.AddFile(VddkArchiveBuilder.Distrib($"doc/{deep}/notes.txt"), "not VMware code", 0x180);
        builder.AddSymlink(VddkArchiveBuilder.Distrib("doc/shortcut"), deep + "/notes.txt");
        var path = Path.Combine(_work, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        builder.Write(path);
        return path;
    }

    private sealed record Entry(TarEntryType Type, string? LinkName, int Mode, int Uid, int Gid, string? Sha256);

    private static string Normalize(string name) => (name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name).TrimEnd('/');

    private static Dictionary<string, Entry> Read(string tarGz)
    {
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        using var file = File.OpenRead(tarGz);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new TarReader(gzip);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is TarEntryType.ExtendedAttributes or TarEntryType.GlobalExtendedAttributes or TarEntryType.LongLink or TarEntryType.LongPath)
            {
                continue;
            }
            var name = Normalize(entry.Name);
            var type = entry.EntryType is TarEntryType.V7RegularFile or TarEntryType.ContiguousFile ? TarEntryType.RegularFile : entry.EntryType;
            var hash = entry.DataStream is { } data ? Convert.ToHexString(SHA256.HashData(data)) : null;
            var link = type switch
            {
                TarEntryType.SymbolicLink => entry.LinkName,
                TarEntryType.HardLink => Normalize(entry.LinkName),
                _ => null,
            };
            entries[name] = new Entry(type, link, (int)entry.Mode & 0xFFF, entry.Uid, entry.Gid, type == TarEntryType.RegularFile ? hash : null);
        }
        return entries;
    }
}
