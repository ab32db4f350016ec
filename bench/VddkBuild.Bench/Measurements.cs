using System.Globalization;
using System.Text;

namespace VddkBuild.Bench;

/// <summary>One repetition of one method.</summary>
internal sealed record Sample(TimeSpan Wall, TimeSpan? Tasks, long BytesUploaded, int Requests, int BlobUploads, long PeakRssKb, TimeSpan Cpu = default)
{
    /// <summary>The native worker's own peak RSS, from its detailed-log line; 0 when not asked for or not run.</summary>
    public long WorkerPeakRssKb { get; init; }
}

/// <summary>A method measured several times; the table shows min and median.</summary>
internal sealed class Row(string name, string note)
{
    public string Name { get; } = name;

    public string Note { get; } = note;

    public List<Sample> Samples { get; } = [];

    public TimeSpan MinWall => Samples.Min(s => s.Wall);

    public TimeSpan MedianWall => Median(Samples.Select(s => s.Wall));

    public TimeSpan MedianCpu => Median(Samples.Select(s => s.Cpu));

    public TimeSpan? MedianTasks => Samples.All(s => s.Tasks is not null) && Samples.Count > 0 ? Median(Samples.Select(s => s.Tasks!.Value)) : null;

    public TimeSpan? MinTasks => Samples.All(s => s.Tasks is not null) && Samples.Count > 0 ? Samples.Min(s => s.Tasks!.Value) : null;

    private static TimeSpan Median(IEnumerable<TimeSpan> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? TimeSpan.Zero
            : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2]
            : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>Median of a count over the repetitions (they are normally all equal).</summary>
    public long MedianOf(Func<Sample, long> pick)
    {
        var sorted = Samples.Select(pick).Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }
}

/// <summary>Prints rows as a Markdown table (the README's Performance section is pasted from it).</summary>
internal static class ResultTable
{
    public static string Render(IReadOnlyList<Row> rows, Row? reference)
    {
        var text = new StringBuilder();
        text.AppendLine("| method | wall min / median | in tasks min / median | CPU (median) | uploaded | requests (blob uploads) | peak RSS | x podman (median wall) |");
        text.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            var ratio = reference is null || reference.Samples.Count == 0 || row.Samples.Count == 0
                ? "-"
                : (row.MedianWall.TotalSeconds / reference.MedianWall.TotalSeconds).ToString("0.00", CultureInfo.InvariantCulture) + "x";
            var tasks = row.MinTasks is { } minTasks ? $"{Seconds(minTasks)} / {Seconds(row.MedianTasks!.Value)}" : "-";
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {row.Name} | {Seconds(row.MinWall)} / {Seconds(row.MedianWall)} | {tasks} | {(row.MedianCpu > TimeSpan.Zero ? Seconds(row.MedianCpu) : "-")} | {Megabytes(row.MedianOf(s => s.BytesUploaded))} | {row.MedianOf(s => s.Requests)} ({row.MedianOf(s => s.BlobUploads)}) | {(row.MedianOf(s => s.PeakRssKb) is > 0 and var rss ? Megabytes(rss * 1024) : "-")} | {ratio} |");
        }
        return text.ToString();
    }

    public static string Seconds(TimeSpan time) => time.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) + " s";

    public static string Megabytes(long bytes) => (bytes / 1_000_000.0).ToString(bytes < 10_000_000 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " MB";
}
