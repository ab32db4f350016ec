using System.IO.Compression;
using VddkBuild.TestSupport.Archives;

namespace VddkBuild.Bench;

/// <summary>
/// The archives the benchmark runs on, generated once into a cache folder (the big ones take a minute) and reused by
/// later runs: they are deterministic (fixed seeds), so a cached file is the file a new run would make.
/// </summary>
internal sealed class BenchArchives(string cacheDirectory)
{
    /// <summary>The VDDK-8-shaped sample (about 70 MB unpacked, 20 MB gz), as <c>tools/VddkBuild.Fixtures sample-archive</c> writes it.</summary>
    public string Sample() => Get("sample", SampleVddkArchiveOptions.Vddk8);

    /// <summary>The same layout with other bytes (another seed): "the archive changed". One per repetition, so none is cached by an earlier one.</summary>
    public string Changed(int repetition) => Get($"changed-{repetition}", SampleVddkArchiveOptions.Vddk8 with { Seed = 100 + (ulong)repetition });

    /// <summary>The scale row for bytes: <paramref name="unpackedBytes"/> of VDDK-shaped content.</summary>
    public string Large(long unpackedBytes) =>
        Get($"large-{unpackedBytes / 1_000_000}mb", SampleVddkArchiveOptions.Vddk8 with { TargetUnpackedBytes = unpackedBytes, Seed = 7 }, CompressionLevel.Fastest);

    /// <summary>The scale row for entries: the sample with <paramref name="documentationPages"/> small files.</summary>
    public string ManyFiles(int documentationPages) =>
        Get($"files-{documentationPages}", SampleVddkArchiveOptions.Vddk8 with { DocumentationPages = documentationPages, Seed = 11 });

    private string Get(string name, SampleVddkArchiveOptions options, CompressionLevel level = CompressionLevel.Optimal)
    {
        var folder = Path.Combine(cacheDirectory, name);
        var path = Path.Combine(folder, SampleVddkArchive.FileName(options));
        if (File.Exists(path))
        {
            return path;
        }
        Directory.CreateDirectory(folder);
        Console.Error.WriteLine($"bench: generating {name} archive (cached in {folder})");
        var builder = SampleVddkArchive.CreateBuilder(options);
        builder.GzipLevel = level;
        var temp = path + $".{Guid.NewGuid():N}.tmp";
        try
        {
            builder.Write(temp);
            File.Move(temp, path);
        }
        finally
        {
            File.Delete(temp);
        }
        return path;
    }
}
