using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using VddkBuild.IntegrationTests.Tasks;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>What one <c>dotnet build</c> of the sample did: exit code, everything it printed, how long it took.</summary>
internal sealed partial record BuildRun(int ExitCode, string Output, TimeSpan Elapsed, TimeSpan? StoppedAfterInterrupt, int ProcessGroup = 0)
{
    /// <summary>Processes still alive in the build's process group (MSBuild nodes, task hosts), waiting up to <paramref name="grace"/>.</summary>
    public async Task<IReadOnlyList<string>> SurvivorsAsync(TimeSpan grace)
    {
        var deadline = DateTime.UtcNow + grace;
        while (true)
        {
            var start = new ProcessStartInfo("pgrep", ["-a", "-g", ProcessGroup.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { RedirectStandardOutput = true, UseShellExecute = false };
            using var pgrep = Process.Start(start)!;
            var listed = await pgrep.StandardOutput.ReadToEndAsync();
            await pgrep.WaitForExitAsync();
            var survivors = listed.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (survivors.Length == 0 || DateTime.UtcNow > deadline)
            {
                return survivors;
            }
            await Task.Delay(100);
        }
    }

    public bool Succeeded => ExitCode == 0;

    /// <summary>The codes of the MSBuild errors it reported (<c>error VDDKnnnn</c>).</summary>
    public IReadOnlyList<string> ErrorCodes => [.. ErrorPattern().Matches(Output).Select(m => m.Groups[1].Value).Distinct()];

    /// <summary>Retries the registry client announced (one line each).</summary>
    public int Retries => RetryPattern().Matches(Output).Count;

    /// <summary>The pushed image's digest, from the line PublishVddk prints at the end.</summary>
    public string? Digest => DigestPattern().Match(Output) is { Success: true } m ? m.Groups[1].Value : null;

    public override string ToString() => $"exit {ExitCode} after {Elapsed.TotalSeconds:0.0} s\n{Output}";

    [GeneratedRegex(@"error (VDDK\d{4})")]
    private static partial Regex ErrorPattern();

    [GeneratedRegex(@"; retrying in \d")]
    private static partial Regex RetryPattern();

    [GeneratedRegex(@"VddkImageDigest = (sha256:[0-9a-f]{64})")]
    private static partial Regex DigestPattern();
}

/// <summary>A build in flight, for tests that interrupt it.</summary>
internal sealed class RunningBuild(Process process, Func<string> output)
{
    private readonly Stopwatch _sinceInterrupt = new();

    public int ProcessId => process.Id;

    public string OutputSoFar => output();

    public bool HasExited => process.HasExited;

    internal TimeSpan? SinceInterrupt => _sinceInterrupt.IsRunning ? _sinceInterrupt.Elapsed : null;

    /// <summary>
    /// Ctrl+C as a terminal delivers it: SIGINT to the build's whole process group (dotnet, MSBuild and the task
    /// host it started), which was made its own group so that the test host is not hit.
    /// </summary>
    /// <param name="wholeGroup">False: SIGINT to the dotnet process alone, as a CI runner cancelling a job does.</param>
    public async Task InterruptAsync(bool wholeGroup = true)
    {
        _sinceInterrupt.Start();
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-INT", "--", (wholeGroup ? "-" : string.Empty) + process.Id]) { UseShellExecute = false })!;
        await kill.WaitForExitAsync();
    }
}

/// <summary>
/// Runs the repository's sample project (samples/PublishVddk) like a CI job does: <c>dotnet build</c> with a clean
/// environment plus what the test adds, outputs in a test folder, optionally interrupted while it runs.
/// </summary>
internal sealed class SampleBuild(string workDirectory)
{
    public string ProjectPath { get; } = Path.Combine(DotnetCli.RepoRoot, "samples", "PublishVddk", "PublishVddk.proj");

    public string WorkDirectory { get; } = workDirectory;

    public string OutputDirectory => Path.Combine(WorkDirectory, "out");

    public string IntermediateDirectory => Path.Combine(WorkDirectory, "obj");

    /// <summary>TMPDIR of the build: anything left here after a run is temp litter.</summary>
    public string TempDirectory => Path.Combine(WorkDirectory, "tmp");

    public Dictionary<string, string?> Environment { get; } = new(StringComparer.Ordinal);

    /// <summary>False skips building the in-repo task assembly (for builds that run at the same time as another).</summary>
    public bool BuildTasks { get; init; } = true;

    public Task<BuildRun> RunAsync(string target, IReadOnlyDictionary<string, string> properties, params string[] extra) =>
        RunAsync(target, properties, extra, during: null);

    public async Task<BuildRun> RunAsync(string target, IReadOnlyDictionary<string, string> properties, IReadOnlyList<string> extra, Func<RunningBuild, Task>? during, TimeSpan? timeout = null)
    {
        Directory.CreateDirectory(TempDirectory);
        var start = new ProcessStartInfo("setsid")
        {
            WorkingDirectory = DotnetCli.RepoRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // SIGINT at its default, as in a terminal: a test host started in the background (a non-interactive shell's
        // `&`, `nohup`) has SIGINT ignored, the ignoring is inherited, and the runtime then never sees Ctrl+C.
        List<string> arguments = ["env", "--default-signal=INT", "dotnet", "build", ProjectPath, "-t:" + target, "-nologo", "-v:n",
            "-p:VddkOutputDirectory=" + OutputDirectory + "/", "-p:VddkIntermediateDirectory=" + IntermediateDirectory + "/"];
        if (!BuildTasks)
        {
            arguments.Add("-p:VddkTasksDependsOn=");
        }
        arguments.AddRange(properties.Select(p => $"-p:{p.Key}={p.Value}"));
        arguments.AddRange(extra);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["MSBUILDTERMINALLOGGER"] = "off";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["TMPDIR"] = TempDirectory;
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("DOTNET_CONTAINER_", StringComparison.Ordinal) || k is "AWS_CA_BUNDLE" or "SOURCE_DATE_EPOCH").ToList())
        {
            start.Environment.Remove(name);
        }
        foreach (var (name, value) in Environment)
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { output.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string Text()
        {
            lock (gate)
            {
                return output.ToString();
            }
        }
        var running = new RunningBuild(process, Text);
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
        try
        {
            if (during is not null)
            {
                await during(running).WaitAsync(limit.Token);
            }
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet build -t:{target} did not finish in time.\n{Text()}");
        }
        var stopped = running.SinceInterrupt;
        process.WaitForExit();
        return new BuildRun(process.ExitCode, Text(), clock.Elapsed, stopped, process.Id);
    }
}
