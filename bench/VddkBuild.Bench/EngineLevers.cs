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

        // The archive-as-layer shortcut needs an archive whose tar is exactly the layer's: make one from our own layer.
        var canonical = await CanonicalArchiveAsync(sample, Path.Combine(root, "canonical"));
        await Measure("canonical archive, normal path", "recompresses",
            o => Layer(canonical, o, new LayerWriterOptions()));
        await Measure("canonical archive, archive used as the layer", "kept: read twice, no compression",
            async o =>
            {
                if (!ArchiveAsLayer.MightQualify(canonical))
                {
                    throw new InvalidOperationException("the canonical archive was not recognised");
                }
                await using var probe = LayerWriter.ForDiffIdOnly();
                await new VddkArchiveReader(canonical, VddkArchiveReadOptions.Default, NullBuildLog.Instance).ReadAsync(probe, CancellationToken.None);
                var diffId = await probe.CompleteDiffIdAsync(CancellationToken.None);
                var layer = await ArchiveAsLayer.TryUseAsync(canonical, diffId, o, CancellationToken.None)
                    ?? throw new InvalidOperationException("the canonical archive did not qualify");
                return layer.Descriptor.Size;
            });
        await Measure("VMware-shaped archive, shortcut pre-check", "rejects after one header",
            _ => Task.FromResult(ArchiveAsLayer.MightQualify(sample) ? throw new InvalidOperationException("a GNU-tar archive passed the pre-check") : 0L));

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

    /// <summary>Our own layer of <paramref name="sample"/>, recompressed as one gzip member and named like a VMware download.</summary>
    private static async Task<string> CanonicalArchiveAsync(string sample, string directory)
    {
        var layerDirectory = Path.Combine(directory, "layer");
        await using var writer = new LayerWriter(layerDirectory);
        await new VddkArchiveReader(sample, VddkArchiveReadOptions.Default, NullBuildLog.Instance).ReadAsync(writer, CancellationToken.None);
        var layer = await writer.CompleteAsync(CancellationToken.None);
        var path = Path.Combine(directory, Path.GetFileName(sample));
        await using (var input = new GZipStream(File.OpenRead(layer.FilePath), CompressionMode.Decompress))
        await using (var output = new GZipStream(File.Create(path), CompressionLevel.Optimal))
        {
            await input.CopyToAsync(output);
        }
        return path;
    }
}
