using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.Bench;

/// <summary>
/// The two MSBuild-based methods, each a whole <c>dotnet build</c> command as a user or CI runs it (restore done
/// beforehand, <c>--no-restore</c>), with <c>-nodeReuse:false</c> so every run starts cold and its process tree holds
/// the whole build (for the peak RSS), and <c>-clp:PerformanceSummary</c> for the time inside the tasks.
/// </summary>
internal sealed class DotnetBuilds(BenchRegistry registry, string repoRoot, string workDirectory)
{
    /// <summary>The base image PublishVddk builds on (the registry's copy; an OCI layout only for --no-push).</summary>
    public string BaseImage { get; set; } = $"{registry.Authority}/base:latest";

    private static readonly string[] VddkTasks = ["PublishVddkImage", "BuildVddkImage"];
    private static readonly string[] SdkTasks = ["CreateNewImage"];

    private ChildEnvironment Environment => ChildEnvironment.Minimal()
        .With("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
        .With("DOTNET_NOLOGO", "1")
        .With("DOTNET_SKIP_FIRST_TIME_EXPERIENCE", "1")
        .With("MSBUILDTERMINALLOGGER", "off")
        .With("DOTNET_CONTAINER_INSECURE_REGISTRIES", registry.Authority);

    public string SampleProject => Path.Combine(repoRoot, "samples", "PublishVddk", "PublishVddk.proj");

    /// <summary>
    /// A user's project as the README gives it, <c>&lt;Project Sdk="VddkBuild.Tasks/VERSION"&gt;</c>, taking the tasks from
    /// the NuGet package: MSBuild's NuGet SDK resolver finds it on every evaluation, which the sample (importing the SDK's
    /// files by path) does not pay. Its own nuget.config (the bench's feed only) and NUGET_PACKAGES folder.
    /// </summary>
    private string PackageProjectDirectory => Path.Combine(workDirectory, "package-project");

    public string PackageProject => Path.Combine(PackageProjectDirectory, "PublishVddk.proj");

    private ChildEnvironment PackageEnvironment => Environment.With("NUGET_PACKAGES", Path.Combine(workDirectory, "nuget-packages"));

    /// <summary>Restores the sample and builds the task assembly once, outside the timings.</summary>
    public async Task PrepareAsync()
    {
        // The worker's project builds the tasks, then (linux-x64) the native worker into their folder.
        await ProcessRunner.RunCheckedAsync("dotnet", ["build", Path.Combine(repoRoot, "src", "VddkBuild.Worker"), "-c", "Release", "-nologo", "-clp:ErrorsOnly"], Environment, TimeSpan.FromMinutes(10));
        await ProcessRunner.RunCheckedAsync("dotnet", ["restore", SampleProject, "-nologo"], Environment, TimeSpan.FromMinutes(10));
        await PreparePackageProjectAsync();
    }

    /// <summary>
    /// Packs the task assembly and worker just built (the pack's own build finds the tasks up to date, so the package
    /// holds the worker built from that same compilation, as ./build.sh pack) into
    /// WORK/feed and writes the package project; its first evaluation, not timed, extracts the package as a user's first
    /// build does.
    /// </summary>
    private async Task PreparePackageProjectAsync()
    {
        var feed = Path.Combine(workDirectory, "feed");
        await ProcessRunner.RunCheckedAsync("dotnet", ["pack", Path.Combine(repoRoot, "src", "VddkBuild.Tasks"), "-c", "Release", "-o", feed, "-nologo", "-clp:ErrorsOnly"], Environment, TimeSpan.FromMinutes(10));
        var package = Directory.GetFiles(feed, "VddkBuild.Tasks.*.nupkg").Single();
        var version = Path.GetFileNameWithoutExtension(package)["VddkBuild.Tasks.".Length..];
        Directory.CreateDirectory(PackageProjectDirectory);
        await File.WriteAllTextAsync(PackageProject, $"""<Project Sdk="VddkBuild.Tasks/{version}" />""");
        await File.WriteAllTextAsync(Path.Combine(PackageProjectDirectory, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="bench" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        // The search for Directory.Build.props/targets stops here instead of finding the repository's own.
        await File.WriteAllTextAsync(Path.Combine(PackageProjectDirectory, "Directory.Build.props"), "<Project />");
        await File.WriteAllTextAsync(Path.Combine(PackageProjectDirectory, "Directory.Build.targets"), "<Project />");
        await ProcessRunner.RunCheckedAsync("dotnet", ["build", PackageProject, "--no-restore", "-nologo", "-nodeReuse:false", "-getProperty:VddkRepository"], PackageEnvironment, TimeSpan.FromMinutes(10), PackageProjectDirectory);
    }

    /// <summary>
    /// <c>dotnet build samples/PublishVddk -t:PublishVddk</c> pushing to <paramref name="repository"/>, with its own
    /// intermediate folder (a fresh one means no layer cache: cold). The in-repository task assembly is used as the
    /// NuGet package would be: in-process, without rebuilding the tasks project on every run.
    /// </summary>
    public Task<Sample> PublishVddkAsync(string archive, string repository, string intermediate, bool pushToRegistry = true, params string[] extraProperties) =>
        PublishVddkAsync(archive, repository, intermediate, pushToRegistry, msbuildServer: false, extraProperties);

    /// <summary>The same from <see cref="PackageProject"/>: the tasks and worker the NuGet package holds, found by the SDK resolver.</summary>
    public Task<Sample> PublishVddkFromPackageAsync(string archive, string repository, string intermediate, bool pushToRegistry = true) =>
        PublishVddkAsync(archive, repository, intermediate, pushToRegistry, msbuildServer: false, [], fromPackage: true);

    /// <summary>
    /// The same with a detailed file log, from which the native worker's own peak RSS is read (the process tree's peak
    /// is MSBuild's, which the worker's streaming stays below). For the scale rows: the log costs a little time.
    /// </summary>
    public async Task<Sample> PublishVddkWithWorkerPeakAsync(string archive, string repository, string intermediate, bool pushToRegistry = true)
    {
        var log = Path.Combine(workDirectory, "logs", $"detailed-{repository}.log");
        Directory.CreateDirectory(Path.GetDirectoryName(log)!);
        var sample = await PublishVddkAsync(archive, repository, intermediate, pushToRegistry, msbuildServer: false, [], ["-fl", $"-flp:logfile={log};verbosity=detailed"]);
        var match = System.Text.RegularExpressions.Regex.Match(await File.ReadAllTextAsync(log), @"native worker peak RSS (\d+) kB");
        return sample with { WorkerPeakRssKb = match.Success ? long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0 };
    }

    /// <summary>
    /// The same through the MSBuild server (<c>DOTNET_CLI_USE_MSBUILD_SERVER=1</c>, node reuse on): the build runs in
    /// a long-lived server process that has loaded and compiled MSBuild and the tasks already, as on a developer's
    /// machine or a persistent CI agent with the server turned on. The process tree measured is the CLI's only.
    /// </summary>
    public Task<Sample> PublishVddkThroughServerAsync(string archive, string repository, string intermediate) =>
        PublishVddkAsync(archive, repository, intermediate, pushToRegistry: true, msbuildServer: true, extraProperties: []);

    /// <summary>Stops the MSBuild server and its nodes, so that nothing the bench started outlives it.</summary>
    public Task ShutDownServerAsync() =>
        ProcessRunner.RunCheckedAsync("dotnet", ["build-server", "shutdown", "--msbuild"], ServerEnvironment, TimeSpan.FromMinutes(2));

    private ChildEnvironment ServerEnvironment => Environment.With("DOTNET_CLI_USE_MSBUILD_SERVER", "1");

    private async Task<Sample> PublishVddkAsync(string archive, string repository, string intermediate, bool pushToRegistry, bool msbuildServer, string[] extraProperties, string[]? extraArguments = null, bool fromPackage = false)
    {
        List<string> args =
        [
            "build", fromPackage ? PackageProject : SampleProject, "--no-restore", "-nologo", msbuildServer ? "-nodeReuse:true" : "-nodeReuse:false", "-clp:PerformanceSummary", "-v:m",
            "-t:PublishVddk",
            $"-p:VddkArchive={archive}",
            $"-p:VddkBaseImage={BaseImage}",
            $"-p:VddkRepository={repository}",
            $"-p:VddkIntermediateDirectory={intermediate}/",
            $"-p:VddkOutputDirectory={intermediate}-out/",
        ];
        if (!fromPackage)
        {
            // The in-repository task assembly used as the package's would be: in-process, not rebuilt on every run.
            args.Add("-p:VddkTasksDependsOn=");
            args.Add("-p:VddkTasksOutOfProcess=false");
        }
        if (pushToRegistry)
        {
            args.Add($"-p:VddkRegistry={registry.Authority}");
            args.Add("-p:VddkRegistryInsecure=true");
        }
        args.AddRange(extraProperties.Select(p => "-p:" + p));
        args.AddRange(extraArguments ?? []);
        var before = registry.Snapshot();
        var cost = await TimedCommand.RunAsync("dotnet", args, msbuildServer ? ServerEnvironment : fromPackage ? PackageEnvironment : Environment, fromPackage ? PackageProjectDirectory : repoRoot);
        var traffic = registry.Snapshot() - before;
        await KeepLogAsync($"publishvddk-{repository}{(msbuildServer ? "-server" : fromPackage ? "-package" : "")}", cost.Output);
        return new Sample(cost.Wall, TimedCommand.TaskTime(cost.Output, VddkTasks), traffic.BodyBytes, traffic.Requests, traffic.BlobUploads, cost.PeakRssKb, cost.Cpu);
    }

    /// <summary>Every build's output goes to WORK/logs, numbered in run order, for reading what a row spent its time on.</summary>
    private async Task KeepLogAsync(string name, string output)
    {
        var logs = Path.Combine(workDirectory, "logs");
        Directory.CreateDirectory(logs);
        var number = Interlocked.Increment(ref _logNumber);
        await File.WriteAllTextAsync(Path.Combine(logs, $"{number:D3}-{name}.log"), output);
    }

    private int _logNumber;

    /// <summary>
    /// What every <c>dotnet build -t:PublishVddk</c> of the sample costs before its task runs: CLI and MSBuild start-up,
    /// the project's evaluation, the build's set-up (build manager, in-process node, loggers) and the first target every
    /// VddkBuild target depends on, <c>_VddkRefuseSecretProperties</c>, which runs no task. The part of rows 3-5 no task
    /// can remove; with <paramref name="fromPackage"/>, of the package project, whose evaluation also runs MSBuild's
    /// NuGet SDK resolver. With <paramref name="evaluateOnly"/>, <c>-getProperty</c>: start-up and evaluation only.
    /// </summary>
    public async Task<Sample> MSBuildFixedCostAsync(bool fromPackage = false, bool evaluateOnly = false)
    {
        string[] what = evaluateOnly ? ["-getProperty:VddkRepository"] : ["-v:m", "-t:_VddkRefuseSecretProperties"];
        var cost = await TimedCommand.RunAsync("dotnet",
            ["build", fromPackage ? PackageProject : SampleProject, "--no-restore", "-nologo", "-nodeReuse:false", .. what],
            fromPackage ? PackageEnvironment : Environment, fromPackage ? PackageProjectDirectory : repoRoot);
        return new Sample(cost.Wall, null, 0, 0, 0, cost.PeakRssKb, cost.Cpu);
    }

    /// <summary>The .NET SDK's CreateNewImage on the extracted tree, called from a plain .proj (see local-infrastructure.md).</summary>
    public async Task<Sample> SdkCreateNewImageAsync(string extractedTree, string repository)
    {
        var project = Path.Combine(workDirectory, "sdk", "CreateImage.proj");
        Directory.CreateDirectory(Path.GetDirectoryName(project)!);
        await File.WriteAllTextAsync(project, """
            <Project>
              <UsingTask TaskName="Microsoft.NET.Build.Containers.Tasks.CreateNewImage"
                         AssemblyFile="$(MSBuildExtensionsPath)/Containers/tasks/net10.0/Microsoft.NET.Build.Containers.dll" />
              <Target Name="CreateImage">
                <ItemGroup>
                  <_Entrypoint Include="cp;-r;/vmware-vix-disklib-distrib;/opt" />
                </ItemGroup>
                <CreateNewImage BaseRegistry="$(BenchRegistry)" BaseImageName="base" BaseImageTag="latest"
                                OutputRegistry="$(BenchRegistry)" Repository="$(BenchRepository)" ImageTags="8.0.1"
                                PublishDirectory="$(BenchTree)" WorkingDirectory="/vmware-vix-disklib-distrib"
                                Entrypoint="@(_Entrypoint)" ContainerUser="1001"
                                GenerateLabels="false" GenerateDigestLabel="false"
                                ContainerRuntimeIdentifier="linux-x64"
                                RuntimeIdentifierGraphPath="$(MSBuildExtensionsPath)/PortableRuntimeIdentifierGraph.json" />
              </Target>
            </Project>
            """);
        var before = registry.Snapshot();
        var cost = await TimedCommand.RunAsync("dotnet",
            ["build", project, "--no-restore", "-nologo", "-nodeReuse:false", "-clp:PerformanceSummary", "-v:m", "-t:CreateImage",
             $"-p:BenchRegistry={registry.Authority}", $"-p:BenchRepository={repository}", $"-p:BenchTree={extractedTree}/"],
            Environment, workDirectory);
        var traffic = registry.Snapshot() - before;
        await KeepLogAsync($"sdk-{repository}", cost.Output);
        return new Sample(cost.Wall, TimedCommand.TaskTime(cost.Output, SdkTasks), traffic.BodyBytes, traffic.Requests, traffic.BlobUploads, cost.PeakRssKb, cost.Cpu);
    }
}
