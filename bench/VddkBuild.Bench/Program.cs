using System.Globalization;
using System.Text;
using VddkBuild.Bench;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Registry;

// ./build.sh bench: one run, every method on the same archive, registry and base image; prints Markdown tables.
// Never a test: timings depend on the machine. Exit codes: 0 done, 1 a method failed, 2 usage error.
const string Usage = """
    usage: VddkBuild.Bench --repo DIR [--reps 3] [--work DIR] [--cache DIR] [--large-mb 1500] [--files 20000]
                           [--no-scale] [--no-levers] [--only-levers] [--no-push] [--out FILE]
      --repo      the VddkBuild repository (for samples/PublishVddk and the task assembly)
      --work      scratch folder, emptied first (default: REPO/artifacts/bench)
      --cache     generated archives, kept between runs (default: REPO/artifacts/bench-cache)
      --large-mb  unpacked size of the scale row for bytes; --files: entries of the scale row for entry count
      --only-levers  just the in-process lever table (no registry, podman or MSBuild)
      --no-push   PublishVddk writes an OCI archive instead of pushing (only to try the harness without a registry push)
      --out       also write the tables to FILE
    """;

var options = BenchOptions.Parse(args);
if (options is null)
{
    Console.Error.WriteLine(Usage);
    return 2;
}

try
{
    var report = await RunAsync(options);
    Console.WriteLine(report);
    if (options.Out is not null)
    {
        await File.WriteAllTextAsync(options.Out, report);
    }
    return 0;
}
catch (Exception ex) when (ex is InvalidOperationException or IOException or ProcessFailedException or TimeoutException)
{
    Console.Error.WriteLine($"bench: {ex.Message}");
    return 1;
}

static async Task<string> RunAsync(BenchOptions options)
{
    foreach (var tool in new[] { "podman", "docker-registry", "skopeo", "tar" })
    {
        Requires.Tool(tool);
    }
    if (!File.Exists(TimedCommand.GnuTime))
    {
        throw new InvalidOperationException($"{TimedCommand.GnuTime} is missing: install Debian's 'time' package (./build.sh deps).");
    }
    if (Directory.Exists(options.Work))
    {
        Directory.Delete(options.Work, recursive: true);
    }
    Directory.CreateDirectory(options.Work);
    var archives = new BenchArchives(options.Cache);
    var sample = archives.Sample();
    if (options.OnlyLevers)
    {
        return await EngineLevers.RunAsync(sample, options.Work, options.Repetitions);
    }
    var changed = Enumerable.Range(1, options.Repetitions).Select(archives.Changed).ToList();
    string? large = null, many = null, largeNinth = null, largeThird = null, manyQuarter = null, manyFourTimes = null;
    if (options.Scale)
    {
        large = archives.Large(options.LargeMegabytes * 1_000_000L);
        many = archives.ManyFiles(options.Files);
        // More points of the same families, for the growth: a ninth and a third of the bytes; a quarter and four times the entries.
        largeNinth = archives.Large(options.LargeMegabytes / 9 * 1_000_000L);
        largeThird = archives.Large(options.LargeMegabytes / 3 * 1_000_000L);
        manyQuarter = archives.ManyFiles(options.Files / 4);
        manyFourTimes = archives.ManyFiles(options.Files * 4);
    }

    Progress("starting docker-registry behind a counting proxy");
    await using var registry = await BenchRegistry.StartAsync();
    Progress($"pushing the stand-in base image to {registry.Authority}/base:latest");
    using (var skopeoSandbox = new ContainerToolsSandbox())
    {
        skopeoSandbox.AddInsecureRegistry(registry.Authority);
        var layout = Path.Combine(options.Work, "base-layout");
        StandInBaseImage.WriteOciLayout(layout);
        await new Skopeo(skopeoSandbox).CopyAsync($"oci:{layout}:latest", $"docker://{registry.Authority}/base:latest",
            destinationAccess: RegistryAccess.Insecure, all: true);
    }

    // A base of ubi-minimal's size in a second registry, as the default base (registry.access.redhat.com) is for a
    // cluster's registry: its layer is copied on every first publish (rows 3d, 3e). Not behind the counting proxy: the
    // proxy counts what reaches the target, and the copy's bytes do.
    await using var baseRegistry = options.NoPush ? null : await DockerRegistryProcess.StartAsync();
    if (baseRegistry is not null)
    {
        Progress($"pushing a base of ubi-minimal's size to {baseRegistry.Authority}/ubi:latest");
        using var skopeoSandbox = new ContainerToolsSandbox();
        skopeoSandbox.AddInsecureRegistry(baseRegistry.Authority);
        var layout = Path.Combine(options.Work, "ubi-sized-layout");
        UbiSizedBase.WriteOciLayout(layout);
        await new Skopeo(skopeoSandbox).CopyAsync($"oci:{layout}:latest", $"docker://{baseRegistry.Authority}/ubi:latest", destinationAccess: RegistryAccess.Insecure);
    }
    string[] otherBase = baseRegistry is null ? [] : [$"VddkBaseImage={baseRegistry.Authority}/ubi:latest", $"VddkInsecureRegistries={baseRegistry.Authority}"];

    var dotnet = new DotnetBuilds(registry, options.Repo, options.Work);
    if (options.NoPush)
    {
        dotnet.BaseImage = $"oci:{Path.Combine(options.Work, "base-layout")}:latest";
    }
    Progress("building the task assembly and restoring the sample (not timed)");
    await dotnet.PrepareAsync();
    using var podman = new PodmanProcedure(registry, options.Work);
    Progress("pulling the base into podman's storage (not timed)");
    await podman.PrepareAsync();
    var extracted = Path.Combine(options.Work, "extracted");
    Directory.CreateDirectory(extracted);
    await ProcessRunner.RunCheckedAsync("tar", ["-xzf", sample, "-C", extracted]);
    var tree = Path.Combine(extracted, "vmware-vix-disklib-distrib");

    var podmanCold = new Row("1. documented procedure: tar -xzf + podman build + podman push", "");
    var podmanWarm = new Row("1b. podman rebuild + re-push, nothing changed", "");
    var sdk = new Row("2. .NET SDK CreateNewImage (dotnet build, extracted tree)", "");
    var cold = new Row("3. dotnet build -t:PublishVddk, cold", "");
    var coldLate = new Row("3b. the same, layer sent only after the check (VddkEarlyLayerUpload=false)", "");
    var coldOtherBase = new Row("3d. the same, base of ubi-minimal's size (39 MB) in another registry, copied while the archive is read", "");
    var coldOtherBaseLate = new Row("3e. the same, base copied only after the check (VddkEarlyBaseCopy=false)", "");
    var coldInProcess = new Row("3c. the same, tasks in MSBuild's own process (VddkNativeWorker=false)", "");
    var coldPackage = new Row("3p. the same from the NuGet package (a user's `<Project Sdk=\"VddkBuild.Tasks/VERSION\">`)", "");
    var warm = new Row("4. PublishVddk warm (nothing changed)", "");
    var warmInProcess = new Row("4c. the same, tasks in MSBuild's own process (VddkNativeWorker=false)", "");
    var warmPackage = new Row("4p. the same from the NuGet package", "");
    var warmServer = new Row("4b. PublishVddk warm through the MSBuild server (DOTNET_CLI_USE_MSBUILD_SERVER=1)", "");
    var afterChange = new Row("5. PublishVddk after the archive changed", "");
    var floor = new Row("6. floor: sha256 + gunzip + upload of the archive", "");
    var msbuild = new Row("0. dotnet build of the sample running only the first VddkBuild target, no task (fixed cost of 3-5)", "");
    var msbuildEvaluation = new Row("0a. of which start-up + evaluation (-getProperty)", "");
    var msbuildPackage = new Row("0p. row 0 for the package project (MSBuild's NuGet SDK resolver; fixed cost of 3p, 4p)", "");
    var push = !options.NoPush;

    // Interleaved repetitions: background load on a shared machine hits every method alike.
    try
    {
        for (var rep = 1; rep <= options.Repetitions; rep++)
        {
            Progress($"repetition {rep}/{options.Repetitions}");
            podmanCold.Samples.Add(await podman.ColdAsync(sample, rep));
            podmanWarm.Samples.Add(await podman.WarmAsync(rep));
            sdk.Samples.Add(await dotnet.SdkCreateNewImageAsync(tree, $"sdk-{rep}"));
            var intermediate = Path.Combine(options.Work, $"vddk-{rep}");
            cold.Samples.Add(await dotnet.PublishVddkAsync(sample, $"vddk-{rep}", intermediate, push));
            coldLate.Samples.Add(await dotnet.PublishVddkAsync(sample, $"vddk-late-{rep}", Path.Combine(options.Work, $"vddk-late-{rep}"), push, "VddkEarlyLayerUpload=false"));
            if (push)
            {
                coldOtherBase.Samples.Add(await dotnet.PublishVddkAsync(sample, $"vddk-otherbase-{rep}", Path.Combine(options.Work, $"vddk-otherbase-{rep}"), push, otherBase));
                coldOtherBaseLate.Samples.Add(await dotnet.PublishVddkAsync(sample, $"vddk-otherbase-late-{rep}", Path.Combine(options.Work, $"vddk-otherbase-late-{rep}"), push, [.. otherBase, "VddkEarlyBaseCopy=false"]));
            }
            var inProcess = Path.Combine(options.Work, $"vddk-inproc-{rep}");
            coldInProcess.Samples.Add(await dotnet.PublishVddkAsync(sample, $"vddk-inproc-{rep}", inProcess, push, "VddkNativeWorker=false"));
            var fromPackage = Path.Combine(options.Work, $"vddk-package-{rep}");
            coldPackage.Samples.Add(await dotnet.PublishVddkFromPackageAsync(sample, $"vddk-package-{rep}", fromPackage, push));
            warm.Samples.Add(await dotnet.PublishVddkAsync(sample, $"vddk-{rep}", intermediate, push));
            warmInProcess.Samples.Add(await dotnet.PublishVddkAsync(sample, $"vddk-inproc-{rep}", inProcess, push, "VddkNativeWorker=false"));
            warmPackage.Samples.Add(await dotnet.PublishVddkFromPackageAsync(sample, $"vddk-package-{rep}", fromPackage, push));
            if (push)
            {
                if (rep == 1)
                {
                    // Not timed: starts the server, which then has MSBuild and the tasks loaded and compiled.
                    await dotnet.PublishVddkThroughServerAsync(sample, $"vddk-{rep}", intermediate);
                }
                warmServer.Samples.Add(await dotnet.PublishVddkThroughServerAsync(sample, $"vddk-{rep}", intermediate));
            }
            afterChange.Samples.Add(await dotnet.PublishVddkAsync(changed[rep - 1], $"vddk-{rep}", intermediate, push));
            floor.Samples.Add(await HardwareFloor.RunAsync(registry, sample, rep));
            msbuild.Samples.Add(await dotnet.MSBuildFixedCostAsync());
            msbuildEvaluation.Samples.Add(await dotnet.MSBuildFixedCostAsync(evaluateOnly: true));
            msbuildPackage.Samples.Add(await dotnet.MSBuildFixedCostAsync(fromPackage: true));
        }
    }
    finally
    {
        if (push)
        {
            await dotnet.ShutDownServerAsync();
        }
    }

    var report = new StringBuilder();
    var machine = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}";
    report.AppendLine(CultureInfo.InvariantCulture,
        $"VDDK-8-shaped sample {Size(sample)} gz; {options.Repetitions} repetitions each, interleaved; loopback docker-registry behind a counting proxy; {machine}.");
    report.AppendLine();

    List<Row> rows = [podmanCold, podmanWarm, sdk, cold, coldLate, coldInProcess, coldPackage, warm, warmInProcess, warmPackage, afterChange, floor, msbuild, msbuildEvaluation, msbuildPackage];
    if (push)
    {
        rows.Insert(rows.IndexOf(warm) + 1, warmServer);
        rows.InsertRange(rows.IndexOf(coldLate) + 1, [coldOtherBase, coldOtherBaseLate]);
    }
    report.AppendLine(ResultTable.Render(rows, podmanCold));

    Row? largeRow = null, sampleScaleRow = null;
    string? growth = null;
    if (options.Scale)
    {
        Progress("scale rows (one cold run each)");
        largeRow = new Row($"scale: {options.LargeMegabytes} MB unpacked ({Size(large!)} gz), cold", "");
        largeRow.Samples.Add(await dotnet.PublishVddkWithWorkerPeakAsync(large!, "vddk-large", Path.Combine(options.Work, "vddk-large"), push));
        var manyRow = new Row($"scale: {options.Files + 20} entries ({Size(many!)} gz), cold", "");
        manyRow.Samples.Add(await dotnet.PublishVddkWithWorkerPeakAsync(many!, "vddk-many", Path.Combine(options.Work, "vddk-many"), push));
        sampleScaleRow = new Row("scale: the sample, cold, with the detailed log (worker peak)", "");
        sampleScaleRow.Samples.Add(await dotnet.PublishVddkWithWorkerPeakAsync(sample, "vddk-sample-peak", Path.Combine(options.Work, "vddk-sample-peak"), push));
        var ninthRow = new Row($"scale: {options.LargeMegabytes / 9} MB unpacked ({Size(largeNinth!)} gz), cold", "");
        // Every point of a family runs as the large row does (with the detailed log), so the log's cost cancels out of the slopes.
        ninthRow.Samples.Add(await dotnet.PublishVddkWithWorkerPeakAsync(largeNinth!, "vddk-large-ninth", Path.Combine(options.Work, "vddk-large-ninth"), push));
        var thirdRow = new Row($"scale: {options.LargeMegabytes / 3} MB unpacked ({Size(largeThird!)} gz), cold", "");
        thirdRow.Samples.Add(await dotnet.PublishVddkWithWorkerPeakAsync(largeThird!, "vddk-large-third", Path.Combine(options.Work, "vddk-large-third"), push));
        // The entry rows are short (most of each is the fixed cost), so each runs as often as the main rows.
        var quarterRow = new Row($"scale: {options.Files / 4 + 20} entries ({Size(manyQuarter!)} gz), cold", "");
        var fourTimesRow = new Row($"scale: {options.Files * 4 + 20} entries ({Size(manyFourTimes!)} gz), cold", "");
        for (var rep = 1; rep <= options.Repetitions; rep++)
        {
            // As N's first run (above, for the worker's peak), each point's first run has the detailed log.
            Task<Sample> Run(string archive, string name) => rep == 1
                ? dotnet.PublishVddkWithWorkerPeakAsync(archive, name, Path.Combine(options.Work, name), push)
                : dotnet.PublishVddkAsync(archive, name, Path.Combine(options.Work, name), push);
            quarterRow.Samples.Add(await Run(manyQuarter!, $"vddk-many-quarter-{rep}"));
            if (rep > 1)
            {
                manyRow.Samples.Add(await Run(many!, $"vddk-many-{rep}"));
            }
            fourTimesRow.Samples.Add(await Run(manyFourTimes!, $"vddk-many-four-{rep}"));
        }
        report.AppendLine(ResultTable.Render([cold, sampleScaleRow, ninthRow, thirdRow, largeRow, quarterRow, manyRow, fourTimesRow], null));
        report.AppendLine(CultureInfo.InvariantCulture,
            $"Native worker's own peak RSS (the table's is the largest process, MSBuild's): sample {WorkerPeak(sampleScaleRow)}, large {WorkerPeak(largeRow)}, {options.Files + 20} entries {WorkerPeak(manyRow)}, {options.Files * 4 + 20} entries {WorkerPeak(fourTimesRow)}.");
        report.AppendLine();
        growth = Growth(options, ninthRow, thirdRow, largeRow, quarterRow, manyRow, fourTimesRow);
    }

    report.AppendLine(Goals(podmanCold, podmanWarm, cold, warm, push ? warmServer : null, floor, largeRow, sampleScaleRow, coldPackage, warmPackage, msbuild) + growth);

    if (options.Levers)
    {
        Progress("levers (in-process, layer only)");
        report.AppendLine(await EngineLevers.RunAsync(sample, options.Work, options.Repetitions));
    }
    return report.ToString();
}

// Linear growth: the time each further unit costs (the slope between two points of one family of archives, so the
// fixed cost cancels out) must not rise with the size. Bytes: seconds per GB unpacked from a ninth to a third of the
// large archive and from that third to the whole. Entries: milliseconds per 1,000 entries from a quarter to N and from
// N to 4N. A quadratic step would show as a slope ratio of about 3 (bytes) or 5 (entries). The slopes are taken from
// the time in the tasks, the part the archive's size drives: `dotnet build`'s start-up is the same at every point, so
// it cancels out of a slope anyway, but its run-to-run spread (tens of milliseconds) does not, and the entry slopes
// are only a few milliseconds per 1,000 entries. The slopes of the whole command are printed beside them.
static string Growth(BenchOptions options, Row ninth, Row third, Row large, Row quarter, Row many, Row fourTimes)
{
    var text = new StringBuilder();
    var ninthMb = options.LargeMegabytes / 9;
    var thirdMb = options.LargeMegabytes / 3;
    var quarterCount = options.Files / 4;
    (double First, double Second) BytesSlopes(Func<Row, TimeSpan> time) => (
        (time(third) - time(ninth)).TotalSeconds / ((thirdMb - ninthMb) / 1000.0),
        (time(large) - time(third)).TotalSeconds / ((options.LargeMegabytes - thirdMb) / 1000.0));
    (double First, double Second) EntrySlopes(Func<Row, TimeSpan> time) => (
        (time(many) - time(quarter)).TotalMilliseconds / ((options.Files - quarterCount) / 1000.0),
        (time(fourTimes) - time(many)).TotalMilliseconds / ((options.Files * 4 - options.Files) / 1000.0));
    static TimeSpan Tasks(Row row) => row.MedianTasks ?? row.MedianWall;
    static TimeSpan Wall(Row row) => row.MedianWall;
    var bytes = BytesSlopes(Tasks);
    var bytesWall = BytesSlopes(Wall);
    var entries = EntrySlopes(Tasks);
    var entriesWall = EntrySlopes(Wall);
    void Goal(string name, bool met, string figures) => GoalLine(text, name, met, figures);
    // A first slope that is not positive means the points are within the noise: no ratio can be read from them.
    static bool Linear((double First, double Second) slopes, double limit) => slopes.First > 0 && slopes.Second / slopes.First <= limit;
    const string Noise = " (a first slope that is not positive: the points are within the run-to-run noise; more --reps)";
    Goal("time grows linearly with bytes (slope ratio <= 1.5, time in the tasks)", Linear(bytes, 1.5),
        $"{bytes.First:0.00} s per GB unpacked from {ninthMb} to {thirdMb} MB, {bytes.Second:0.00} s per GB from {thirdMb} to {options.LargeMegabytes} MB (ratio {bytes.Second / bytes.First:0.00}; "
        + $"whole command: {bytesWall.First:0.00} and {bytesWall.Second:0.00} s per GB, ratio {bytesWall.Second / bytesWall.First:0.00})" + (bytes.First > 0 ? "" : Noise));
    Goal("time grows linearly with entries (slope ratio <= 2, time in the tasks)", Linear(entries, 2),
        $"{entries.First:0.0} ms per 1,000 entries from {quarterCount} to {options.Files}, {entries.Second:0.0} ms per 1,000 from {options.Files} to {options.Files * 4} (ratio {entries.Second / entries.First:0.00}; medians of {many.Samples.Count} runs; "
        + $"whole command: {entriesWall.First:0.0} and {entriesWall.Second:0.0} ms per 1,000, ratio {entriesWall.Second / entriesWall.First:0.00})" + (entries.First > 0 ? "" : Noise));
    return text.ToString();
}

static void GoalLine(StringBuilder text, string name, bool met, string figures) =>
    text.AppendLine(CultureInfo.InvariantCulture, $"- {(met ? "met" : "NOT met")}: {name}: {figures}");

static string WorkerPeak(Row row) => row.Samples[0].WorkerPeakRssKb is > 0 and var kb ? ResultTable.Megabytes(kb * 1024) : "- (not run in the worker)";

static string Goals(Row podmanCold, Row podmanWarm, Row cold, Row warm, Row? warmServer, Row floor, Row? large, Row? sampleWithPeak, Row coldPackage, Row warmPackage, Row msbuild)
{
    var text = new StringBuilder("Goals (medians):\n");
    void Goal(string name, bool met, string figures) => GoalLine(text, name, met, figures);
    var coldRatio = cold.MedianWall / podmanCold.MedianWall;
    Goal("cold PublishVddk <= 0.5x podman procedure", coldRatio <= 0.5, $"{ResultTable.Seconds(cold.MedianWall)} vs {ResultTable.Seconds(podmanCold.MedianWall)} = {coldRatio:0.00}x");
    if (cold.MedianTasks is { } tasks)
    {
        var floorRatio = tasks / floor.MedianWall;
        Goal("time inside the tasks <= 1.5x floor", floorRatio <= 1.5, $"{ResultTable.Seconds(tasks)} vs {ResultTable.Seconds(floor.MedianWall)} = {floorRatio:0.00}x");
    }
    var warmRatio = warm.MedianWall / podmanWarm.MedianWall;
    var warmUploads = warm.Samples.Max(s => s.BlobUploads);
    Goal("warm <= 0.25x podman rebuild + re-push, zero blobs uploaded", warmRatio <= 0.25 && warmUploads == 0,
        $"{ResultTable.Seconds(warm.MedianWall)} vs {ResultTable.Seconds(podmanWarm.MedianWall)} = {warmRatio:0.00}x, {warmUploads} blob uploads");
    if (warmServer is not null)
    {
        text.AppendLine(CultureInfo.InvariantCulture,
            $"  (warm through the MSBuild server: {ResultTable.Seconds(warmServer.MedianWall)} = {warmServer.MedianWall / podmanWarm.MedianWall:0.00}x, {warmServer.Samples.Max(s => s.BlobUploads)} blob uploads)");
    }
    text.AppendLine(CultureInfo.InvariantCulture,
        $"  (a user's project from the NuGet package, rows 3p/4p: cold {ResultTable.Seconds(coldPackage.MedianWall)} = {coldPackage.MedianWall / podmanCold.MedianWall:0.00}x, "
        + $"warm {ResultTable.Seconds(warmPackage.MedianWall)} = {warmPackage.MedianWall / podmanWarm.MedianWall:0.00}x, {warmPackage.Samples.Max(s => s.BlobUploads)} blob uploads)");
    text.AppendLine(CultureInfo.InvariantCulture,
        $"  (for reference, not a goal: warm = {warm.MedianWall / podmanCold.MedianWall:0.00}x the documented procedure run again from tar -xzf; `dotnet build` up to the first target, row 0: {ResultTable.Seconds(msbuild.MedianWall)} = {msbuild.MedianWall / podmanWarm.MedianWall:0.00}x of podman's re-push, is the floor of every PublishVddk row)");
    if (large is not null)
    {
        var growth = (large.MedianOf(s => s.PeakRssKb) - cold.MedianOf(s => s.PeakRssKb)) * 1024;
        var workerGrowth = sampleWithPeak is not null && large.Samples[0].WorkerPeakRssKb > 0 && sampleWithPeak.Samples[0].WorkerPeakRssKb > 0
            ? (large.Samples[0].WorkerPeakRssKb - sampleWithPeak.Samples[0].WorkerPeakRssKb) * 1024
            : (long?)null;
        Goal("peak RSS growth from the sample to the large archive <= 64 MB", growth <= 64_000_000 && (workerGrowth ?? 0) <= 64_000_000,
            $"+{ResultTable.Megabytes(growth)} (largest process){(workerGrowth is { } w ? $", native worker +{ResultTable.Megabytes(w)}" : string.Empty)}");
    }
    return text.ToString();
}

static string Size(string path) => ResultTable.Megabytes(new FileInfo(path).Length);

static void Progress(string message) => Console.Error.WriteLine($"bench: {message}");

internal sealed record BenchOptions(string Repo, string Work, string Cache, int Repetitions, int LargeMegabytes, int Files, bool Scale, bool Levers, bool NoPush, string? Out, bool OnlyLevers = false)
{
    public static BenchOptions? Parse(string[] args)
    {
        string? repo = null, work = null, cache = null, output = null;
        int reps = 3, largeMb = 1500, files = 20_000;
        bool scale = true, levers = true, noPush = false, onlyLevers = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                switch (args[i])
                {
                    case "--repo": repo = Path.GetFullPath(Next()); break;
                    case "--work": work = Path.GetFullPath(Next()); break;
                    case "--cache": cache = Path.GetFullPath(Next()); break;
                    case "--out": output = Path.GetFullPath(Next()); break;
                    case "--reps": reps = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--large-mb": largeMb = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--files": files = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--no-scale": scale = false; break;
                    case "--no-levers": levers = false; break;
                    case "--no-push": noPush = true; break;
                    case "--only-levers": onlyLevers = true; break;
                    default: return null;
                }
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
            {
                Console.Error.WriteLine(ex.Message);
                return null;
            }
        }
        if (repo is null || reps < 1)
        {
            return null;
        }
        return new BenchOptions(repo, work ?? Path.Combine(repo, "artifacts", "bench"), cache ?? Path.Combine(repo, "artifacts", "bench-cache"),
            reps, largeMb, files, scale, levers, noPush, output, onlyLevers);
    }
}
