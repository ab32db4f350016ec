using System.Security.Cryptography;
using VddkBuild.Archive;
using VddkBuild.Layers;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Layers;

/// <summary>
/// The VDDK repacked by other tar writers (GNU tar's formats, bsdtar's, busybox tar), each in its dialect of long names,
/// long link targets and hard links: the layer, whether the archive itself or written, unpacks with GNU tar to the
/// tree GNU tar unpacks from the archive (kinds, link targets, contents, hard-link groups, modes plus o+r / o+rx).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // GNU tar, bsdtar and busybox unpack with Unix modes and hard links
public sealed class ForeignToolLayerTests : IDisposable
{
    private static readonly string Deep = string.Join('/', Enumerable.Repeat("a-folder-name-of-forty-characters-length", 4));
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>Tool, its arguments before -czf, and whether the format holds names and link targets over 100 bytes.</summary>
    public static TheoryData<string, string, bool> Writers => new()
    {
        { "tar", "--format=gnu", true },
        { "tar", "--format=oldgnu", true },
        { "tar", "--format=posix", true },
        { "tar", "--format=ustar", false },
        { "tar", "--format=v7", false },
        { "bsdtar", "--format=gnutar", true },
        { "bsdtar", "--format=pax", true },
        { "bsdtar", "--format=ustar", false },
        { "bsdtar", "--format=v7", false },
        { "busybox", "tar", true },
    };

    [Theory]
    [MemberData(nameof(Writers))]
    public async Task The_layer_unpacks_to_the_tree_GNU_tar_unpacks_from_the_archive(string tool, string option, bool longNames)
    {
        var tree = _temp.Sub("tree");
        var source = Path.Combine(_temp.Path, "source.tar");
        var builder = SampleVddkArchive.CreateBuilder(SampleVddkArchiveOptions.Small);
        builder.Compression = ArchiveCompression.None;
        builder.Write(source);
        CliTool.Run("tar", "-xf", source, "-C", tree);
        var doc = Path.Combine(tree, VddkArchiveBuilder.Distrib("doc"));
        var page = Directory.EnumerateFiles(doc).Order(StringComparer.Ordinal).First();
        File.CreateSymbolicLink(Path.Combine(doc, "page.link"), Path.GetFileName(page));
        CliTool.Run("ln", page, Path.Combine(doc, "second-name"));
        if (longNames)
        {
            Directory.CreateDirectory(Path.Combine(doc, Deep));
            await File.WriteAllTextAsync(Path.Combine(doc, Deep, "notes.txt"), "not VMware code");
            File.CreateSymbolicLink(Path.Combine(doc, "shortcut"), Deep + "/notes.txt");
            CliTool.Run("ln", Path.Combine(doc, Deep, "notes.txt"), Path.Combine(doc, Deep, "notes-again.txt"));
        }
        var archive = Path.Combine(_temp.Sub("in"), "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        CliTool.Run(tool, tool == "busybox" ? [option, "-C", tree, "-czf", archive, VddkArchiveBuilder.Top] : ["-C", tree, option, "-czf", archive, VddkArchiveBuilder.Top]);
        var expected = Unpacked(archive, _temp.Sub("gnu"));

        foreach (var asItIs in new[] { true, false })
        {
            var made = await VddkLayerFactory.MakeAsync(archive, VddkArchiveReadOptions.Default, new LayerWriterOptions { UseArchiveAsLayer = asItIs },
                _temp.Sub("work-" + asItIs), new RecordingBuildLog(), CancellationToken.None, useCache: false);
            var layered = Unpacked(made.Layer.FilePath, _temp.Sub("layer-" + asItIs));
            Assert.Equal(expected.Entries.Keys.Order(StringComparer.Ordinal), layered.Entries.Keys.Order(StringComparer.Ordinal));
            foreach (var (path, entry) in expected.Entries)
            {
                Assert.True(entry == layered.Entries[path], $"{tool} {option}, {(asItIs ? "layer allowed to be the archive" : "written layer")}: '{path}' is {layered.Entries[path]} in the layer, {entry} from the archive");
            }
            Assert.Equal(expected.HardLinkGroups, layered.HardLinkGroups);
        }
        Assert.Contains(expected.Entries.Values, e => e.Target == "libvixDiskLib.so.8");
        Assert.NotEmpty(expected.HardLinkGroups);
    }

    private sealed record Entry(char Kind, int Mode, string? Target, string? Sha256);

    private sealed record Tree(Dictionary<string, Entry> Entries, List<string> HardLinkGroups);

    /// <summary>GNU tar's extraction of <paramref name="tarGz"/>, with o+r (o+rx on directories) as the image has it.</summary>
    private static Tree Unpacked(string tarGz, string into)
    {
        CliTool.Run("tar", "-xzf", tarGz, "-C", into);
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        var inodes = new Dictionary<(long Device, long Inode), List<string>>();
        foreach (var full in Directory.EnumerateFileSystemEntries(into, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var path = Path.GetRelativePath(into, full);
            if (new FileInfo(full).LinkTarget is { } target)
            {
                entries[path] = new Entry('l', 0, target, null);
            }
            else if (Directory.Exists(full))
            {
                entries[path] = new Entry('d', (int)File.GetUnixFileMode(full) | 0x5, null, null);
            }
            else
            {
                entries[path] = new Entry('f', (int)File.GetUnixFileMode(full) | 0x4, null, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(full))));
                var stat = CliTool.Run("stat", "-c", "%d %i", full).StdOut.Split(' ', StringSplitOptions.TrimEntries);
                var key = (long.Parse(stat[0], System.Globalization.CultureInfo.InvariantCulture), long.Parse(stat[1], System.Globalization.CultureInfo.InvariantCulture));
                if (!inodes.TryGetValue(key, out var names))
                {
                    inodes[key] = names = [];
                }
                names.Add(path);
            }
        }
        var groups = inodes.Values.Where(g => g.Count > 1).Select(g => string.Join('|', g.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal).ToList();
        return new Tree(entries, groups);
    }
}
