using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.Bench;

/// <summary>What one timed command cost.</summary>
internal sealed record CommandCost(TimeSpan Wall, long PeakRssKb, string Output, TimeSpan Cpu)
{
    public static CommandCost operator +(CommandCost a, CommandCost b) =>
        new(a.Wall + b.Wall, Math.Max(a.PeakRssKb, b.PeakRssKb), a.Output + b.Output, a.Cpu + b.Cpu);
}

/// <summary>
/// Runs a command under GNU time (<c>/usr/bin/time -v</c>, Debian's <c>time</c> package) for its peak RSS, timing
/// the wall clock around it. The peak is the largest resident set of the command or any descendant it waited for
/// (getrusage RUSAGE_CHILDREN), so MSBuild runs use -nodeReuse:false and in-process tasks to keep the build in that tree.
/// </summary>
internal static partial class TimedCommand
{
    public const string GnuTime = "/usr/bin/time";

    public static async Task<CommandCost> RunAsync(string fileName, IEnumerable<string> arguments, ChildEnvironment environment, string? workingDirectory = null)
    {
        var report = Path.Combine(Path.GetTempPath(), $"vddk-bench-time-{Guid.NewGuid():N}.txt");
        try
        {
            var stopwatch = Stopwatch.StartNew();
            var result = await ProcessRunner.RunAsync(GnuTime, ["-v", "-o", report, fileName, .. arguments], environment, TimeSpan.FromMinutes(30), workingDirectory);
            stopwatch.Stop();
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"'{fileName} {string.Join(' ', arguments)}' failed with exit code {result.ExitCode}:\n{Tail(result.StandardOutput)}\n{Tail(result.StandardError)}");
            }
            var text = File.Exists(report) ? await File.ReadAllTextAsync(report) : string.Empty;
            var match = MaxRss().Match(text);
            var rss = match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
            var cpu = Seconds(UserTime().Match(text)) + Seconds(SystemTime().Match(text));
            return new CommandCost(stopwatch.Elapsed, rss, result.StandardOutput + result.StandardError, TimeSpan.FromSeconds(cpu));
        }
        finally
        {
            File.Delete(report);
        }
    }

    /// <summary>Milliseconds MSBuild's <c>-clp:PerformanceSummary</c> attributes to the named tasks (summed), or null when it printed none.</summary>
    public static TimeSpan? TaskTime(string msbuildOutput, IReadOnlyCollection<string> taskNames)
    {
        var at = msbuildOutput.IndexOf("Task Performance Summary:", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        double total = 0;
        var found = false;
        foreach (Match match in SummaryLine().Matches(msbuildOutput[at..]))
        {
            if (taskNames.Contains(match.Groups[2].Value))
            {
                total += double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                found = true;
            }
        }
        return found ? TimeSpan.FromMilliseconds(total) : null;
    }

    private static double Seconds(Match match) => match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;

    private static string Tail(string text) => text.Length <= 4000 ? text : "..." + text[^4000..];

    [GeneratedRegex(@"User time \(seconds\): ([\d.]+)")]
    private static partial Regex UserTime();

    [GeneratedRegex(@"System time \(seconds\): ([\d.]+)")]
    private static partial Regex SystemTime();

    [GeneratedRegex(@"Maximum resident set size \(kbytes\): (\d+)")]
    private static partial Regex MaxRss();

    [GeneratedRegex(@"^\s*(\d+(?:\.\d+)?) ms\s+(\S+)\s+\d+ calls", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();
}
