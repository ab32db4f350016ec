using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Layers;

namespace VddkBuild.Bench;

/// <summary>
/// Each lever of the layer path measured on its own, in this process, on the same sample archive: archive read +
/// layer made, nothing pushed. Shows what the gzip framing, the worker count, the archive-as-layer shortcut and the
/// layer cache each cost or save.
/// </summary>
internal static class EngineLevers
{
    private sealed record Lever(string Name, List<TimeSpan> Times, List<TimeSpan> Cpu, long LayerBytes, string Note);

    public static async Task<string> RunAsync(string sample, string workDirectory, int repetitions)
    {
        var levers = new List<Lever>();
        var root = Path.Combine(workDirectory, "levers");
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
        Directory.CreateDirectory(root);

        async Task<Lever> Measure(string name, string note, Func<string, Task<long>> run)
        {
            var times = new List<TimeSpan>();
            var cpu = new List<TimeSpan>();
            long bytes = 0;
            for (var i = 0; i < repetitions; i++)
            {
                var output = Path.Combine(root, $"{levers.Count}-{i}");
                var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
                var stopwatch = Stopwatch.StartNew();
                bytes = await run(output);
                times.Add(stopwatch.Elapsed);
                cpu.Add(Process.GetCurrentProcess().TotalProcessorTime - cpuBefore);
            }
            var lever = new Lever(name, times, cpu, bytes, note);
            levers.Add(lever);
            return lever;
        }

        Task<long> Layer(string archive, string output, LayerWriterOptions options) => WriteLayerAsync(archive, output, options);

        await Measure("one gzip member, 1 core (the writer before this work)", "same tar, one deflate stream",
            o => Layer(sample, o, new LayerWriterOptions { GzipChunkSize = 128 << 20, CompressionWorkers = 1 }));
        await Measure("1 MiB members, 1 worker", "same bytes as 2 workers",
            o => Layer(sample, o, new LayerWriterOptions { CompressionWorkers = 1 }));
        await Measure("1 MiB members, 2 workers (default)", "kept",
            o => Layer(sample, o, new LayerWriterOptions()));
        await Measure("256 KiB members, 2 workers", "",
            o => Layer(sample, o, new LayerWriterOptions { GzipChunkSize = 256 << 10 }));
        await Measure("4 MiB members, 2 workers", "",
            o => Layer(sample, o, new LayerWriterOptions { GzipChunkSize = 4 << 20 }));
        foreach (var level in new[] { 1, 3, 4, 5 })
        {
            await Measure($"zlib level {level}, 1 MiB members, 2 workers", "",
                o => Layer(sample, o, new LayerWriterOptions { ZlibLevel = level }));
        }

        // The archive as the layer: the sample is written like VMware's (GNU tar, one gzip member, canonical names
        // and modes), so it qualifies; the same archive with the shortcut turned off is the normal path.
        await Measure("the archive used as the layer (one checked reading, no compression)", "kept (default)",
            o => FactoryLayerAsync(sample, o, new LayerWriterOptions()));
        await Measure("the same, inflating on the reading thread (no read-ahead)", "one core",
            o => FactoryLayerAsync(sample, o, new LayerWriterOptions(), VddkArchiveReadOptions.Default with { ReadAhead = false }));
        await Measure("the same archive, shortcut off (normal path)", "recompresses",
            o => FactoryLayerAsync(sample, o, new LayerWriterOptions { UseArchiveAsLayer = false }));
        var repacked = await TwoMembersAsync(sample, Path.Combine(root, "repacked"));
        await Measure("the same tar in two gzip members: refused at its end, then the normal path", "worst case of the shortcut",
            o => FactoryLayerAsync(repacked, o, new LayerWriterOptions()));

        // Layer cache: a hit costs one sha256 of the archive and a small JSON read.
        var cacheRoot = Path.Combine(root, "cache");
        var cache = new LayerCache(Path.Combine(cacheRoot, "entries"));
        var options = new LayerWriterOptions();
        var cachedLayerDir = Path.Combine(cacheRoot, "layers");
        await using (var writer = new LayerWriter(cachedLayerDir, options))
        {
            var contents = await new VddkArchiveReader(sample, VddkArchiveReadOptions.Default, NullBuildLog.Instance).ReadAsync(writer, CancellationToken.None);
            var layer = await writer.CompleteAsync(CancellationToken.None);
            var key = LayerCacheKey.Create(await LayerCache.HashFileAsync(sample, CancellationToken.None), options, VddkArchiveReadOptions.Default);
            await cache.StoreAsync(key, layer, contents, CancellationToken.None);
        }
        await Measure("layer cache hit (sha256 of archive + entry read)", "kept: warm runs neither read nor compress",
            async _ =>
            {
                var key = LayerCacheKey.Create(await LayerCache.HashFileAsync(sample, CancellationToken.None), options, VddkArchiveReadOptions.Default);
                var hit = await cache.TryGetAsync(key, CancellationToken.None) ?? throw new InvalidOperationException("layer cache missed");
                return hit.Layer.Descriptor.Size;
            });

        var text = new StringBuilder();
        text.AppendLine("| lever (archive read + layer made, in-process) | wall min / median | CPU median | layer | note |");
        text.AppendLine("|---|---|---|---|---|");
        foreach (var lever in levers)
        {
            var sorted = lever.Times.Order().ToList();
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {lever.Name} | {ResultTable.Seconds(sorted[0])} / {ResultTable.Seconds(sorted[sorted.Count / 2])} | {ResultTable.Seconds(lever.Cpu.Order().ToList()[lever.Cpu.Count / 2])} | {(lever.LayerBytes > 0 ? ResultTable.Megabytes(lever.LayerBytes) : "-")} | {lever.Note} |");
        }
        Directory.Delete(root, recursive: true);
        return text.ToString();
    }

    private static async Task<long> WriteLayerAsync(string archive, string output, LayerWriterOptions options)
    {
        await using var writer = new LayerWriter(output, options);
        await new VddkArchiveReader(archive, VddkArchiveReadOptions.Default, NullBuildLog.Instance).ReadAsync(writer, CancellationToken.None);
        var layer = await writer.CompleteAsync(CancellationToken.None);
        return layer.Descriptor.Size;
    }

    private static async Task<long> FactoryLayerAsync(string archive, string output, LayerWriterOptions options, VddkArchiveReadOptions? read = null)
    {
        var made = await VddkLayerFactory.MakeAsync(archive, read ?? VddkArchiveReadOptions.Default, options, output, NullBuildLog.Instance, CancellationToken.None, useCache: false);
        return made.Layer.Descriptor.Size;
    }

    /// <summary>The sample's tar recompressed as two gzip members (valid gzip, but no longer the archive's own single member).</summary>
    private static async Task<string> TwoMembersAsync(string sample, string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, Path.GetFileName(sample));
        var tar = new MemoryStream();
        await using (var input = new GZipStream(File.OpenRead(sample), CompressionMode.Decompress))
        {
            await input.CopyToAsync(tar);
        }
        var bytes = tar.ToArray();
        await using var output = File.Create(path);
        foreach (var part in new[] { bytes.AsMemory(0, bytes.Length / 2), bytes.AsMemory(bytes.Length / 2) })
        {
            await using var member = new GZipStream(output, CompressionLevel.Optimal, leaveOpen: true);
            await member.WriteAsync(part);
        }
        return path;
    }
}
