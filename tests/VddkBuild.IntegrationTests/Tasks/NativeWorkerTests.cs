using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;
using System.Diagnostics;
using System.Text.Json;
using VddkBuild.IntegrationTests.Reliability;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>
/// The native worker (vddkbuild-worker, NativeAOT, linux-x64): the image tasks run there by default and give what they
/// give in MSBuild's own process; MSBuild relays its messages, warnings, errors and outputs; a worker that cannot start,
/// was built from other sources or dies is handled. Fake workers (shell scripts in a copy of the task folder) drive the
/// MSBuild side through each case.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class NativeWorkerTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-worker-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private static string TaskFolder => Path.Combine(DotnetCli.RepoRoot, "src", "VddkBuild.Tasks", "bin", "Release", "net10.0", "tasks");

    private static string Worker => Path.Combine(TaskFolder, "linux-x64", "vddkbuild-worker");

    /// <summary>The worker is built for linux-x64 only; there, in CI, it must exist.</summary>
    private static void RequireWorker()
    {
        Requires.That(RuntimeInformation.RuntimeIdentifier == "linux-x64", "the native worker is built for linux-x64 only");
        Requires.That(File.Exists(Worker), $"the native worker was not built ({Worker}): build src/VddkBuild.Worker in Release");
    }

    private (string Archive, string BaseImage) Inputs(string fileName = "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz")
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);
        var renamed = Path.Combine(Path.GetDirectoryName(archive)!, fileName);
        if (renamed != archive)
        {
            File.Move(archive, renamed);
        }
        return (renamed, StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference);
    }

    private SampleProject Sample(string name) => new(Path.Combine(_work, name));

    /// <summary>
    /// Runs a target with a detailed file log beside the console's (-getProperty keeps the console to the properties'
    /// JSON and the errors); returns the result and that log.
    /// </summary>
    private async Task<(DotnetCli.Result Result, string Log)> RunLoggedAsync(string name, string target, IReadOnlyDictionary<string, string> properties, params string[] extra)
    {
        var log = Path.Combine(_work, name + ".log");
        var result = await Sample(name).RunAsync(target, properties, [.. extra, "-fl", $"-flp:logfile={log};verbosity=detailed"]);
        return (result, File.Exists(log) ? File.ReadAllText(log) : string.Empty);
    }

    /// <summary>
    /// The lines MSBuild printed for the build's warnings and errors, whole: the place (file and, for one the task logs
    /// without a place of its own, the task element's line and column) is part of what the user sees.
    /// </summary>
    private static List<string> Problems(string output) =>
        [.. output.Split('\n').Select(l => System.Text.RegularExpressions.Regex.Replace(l.Trim(), @"^\d+>", string.Empty))
            .Where(l => l.Contains(": warning VDDK", StringComparison.Ordinal) || l.Contains(": error VDDK", StringComparison.Ordinal)).Distinct()];

    [SkippableFact]
    public async Task The_image_tasks_run_in_the_worker_and_give_the_image_they_give_in_MSBuild()
    {
        RequireWorker();
        var (archive, baseImage) = Inputs();
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage, ["VddkImageTags"] = "8.0.1%3Blatest" };

        var (worker, workerLog) = await RunLoggedAsync("worker", "BuildVddkImage", properties, "-getProperty:VddkImageDigest", "-getProperty:VddkVersion", "-getProperty:VddkBuildNumber", "-getProperty:VddkImageArchive");
        var (inProcess, inProcessLog) = await RunLoggedAsync("msbuild", "BuildVddkImage", new Dictionary<string, string>(properties) { ["VddkNativeWorker"] = "false" },
            "-getProperty:VddkImageDigest", "-getProperty:VddkVersion", "-getProperty:VddkBuildNumber", "-getProperty:VddkImageArchive");

        Assert.True(worker.Succeeded, worker.ToString());
        Assert.True(inProcess.Succeeded, inProcess.ToString());
        Assert.Contains("BuildVddkImage runs in the native worker", workerLog);
        Assert.DoesNotContain("runs in the native worker", inProcessLog);
        // What the task announces reads the same from either process.
        Assert.Contains("VddkBuild: image digest sha256:", workerLog);
        var fromWorker = Properties(worker.Output);
        var fromMSBuild = Properties(inProcess.Output);
        Assert.StartsWith("sha256:", fromWorker["VddkImageDigest"]);
        Assert.Equal(fromMSBuild["VddkImageDigest"], fromWorker["VddkImageDigest"]);
        Assert.Equal(("8.0.1", "21562716"), (fromWorker["VddkVersion"], fromWorker["VddkBuildNumber"]));
        Assert.Equal(File.ReadAllBytes(fromMSBuild["VddkImageArchive"]), File.ReadAllBytes(fromWorker["VddkImageArchive"]));
    }

    [SkippableFact]
    public async Task Warnings_and_errors_from_the_worker_read_as_they_do_in_MSBuild()
    {
        RequireWorker();
        // A renamed archive: warning VDDK1902 (no build number); then ExtractVddk into a path below a file: an error.
        var (archive, baseImage) = Inputs("vddk.tar.gz");
        var blocker = Path.Combine(_work, "file");
        File.WriteAllText(blocker, "not a folder");
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage };
        var extract = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkExtractDirectory"] = Path.Combine(blocker, "x") + "/" };

        var warned = await Sample("w1").RunAsync("BuildVddkImage", properties);
        var warnedInProcess = await Sample("w2").RunAsync("BuildVddkImage", new Dictionary<string, string>(properties) { ["VddkNativeWorker"] = "false" });
        var failed = await Sample("e1").RunAsync("ExtractVddk", extract);
        var failedInProcess = await Sample("e2").RunAsync("ExtractVddk", new Dictionary<string, string>(extract) { ["VddkNativeWorker"] = "false" });

        Assert.True(warned.Succeeded, warned.ToString());
        Assert.Contains(Problems(warned.Output), p => p.Contains("warning VDDK1902", StringComparison.Ordinal));
        // Logged without a place, so MSBuild names the task element: VddkBuild.Tasks.targets(line,column).
        Assert.Matches(@"VddkBuild\.Tasks\.targets\(\d+,\d+\): warning VDDK1902", Assert.Single(Problems(warned.Output), p => p.Contains("VDDK1902", StringComparison.Ordinal)));
        Assert.Equal(Problems(warnedInProcess.Output), Problems(warned.Output));
        Assert.False(failed.Succeeded, failed.ToString());
        Assert.NotEmpty(Problems(failed.Output));
        Assert.Equal(Problems(failedInProcess.Output), Problems(failed.Output));
        Assert.DoesNotContain("VDDK9999", failed.Output);
    }

    [SkippableFact]
    public async Task Labels_with_MSBuild_special_characters_reach_the_image_unchanged_through_the_worker()
    {
        RequireWorker();
        var (archive, baseImage) = Inputs();
        var project = Path.Combine(_work, "labels", "Labels.proj");
        Directory.CreateDirectory(Path.GetDirectoryName(project)!);
        var sdk = Path.Combine(DotnetCli.RepoRoot, "src", "VddkBuild.Tasks", "Sdk");
        // Escaped in the project file (%3B ';', %25 '%', %40 '@', %24 '$'); MSBuild hands the task the unescaped text.
        File.WriteAllText(project, $"""
            <Project>
              <Import Project="{sdk}/Sdk.props" />
              <PropertyGroup><VddkTasksAssembly>{TaskFolder}/VddkBuild.Tasks.dll</VddkTasksAssembly></PropertyGroup>
              <ItemGroup>
                <VddkLabel Include="com.example.odd" Value="a%3Bb %25 50%25 %40(x) %24(y) 'q' *? %2525" />
                <VddkLabel Include="com.example.plain" Value="value" />
              </ItemGroup>
              <Import Project="{sdk}/Sdk.targets" />
            </Project>
            """);
        var output = Path.Combine(_work, "labels", "image.oci.tar");

        var build = await DotnetCli.RunAsync(_work, ["build", project, "-t:BuildVddkImage", "-nologo", "-v:d", $"-p:VddkArchive={archive}", $"-p:VddkBaseImage={baseImage}", $"-p:VddkImageArchive={output}"]);
        var inProcessOutput = Path.Combine(_work, "labels", "in-process.oci.tar");
        var inProcess = await DotnetCli.RunAsync(_work, ["build", project, "-t:BuildVddkImage", "-nologo", "-v:d", $"-p:VddkArchive={archive}", $"-p:VddkBaseImage={baseImage}", $"-p:VddkImageArchive={inProcessOutput}", "-p:VddkNativeWorker=false"]);

        Assert.True(build.Succeeded, build.ToString());
        Assert.True(inProcess.Succeeded, inProcess.ToString());
        Assert.Contains("runs in the native worker", build.Output);
        var labels = ConfigLabels(output);
        Assert.Equal("a;b % 50% @(x) $(y) 'q' *? %25", labels["com.example.odd"]);
        Assert.Equal("value", labels["com.example.plain"]);
        Assert.Equal(ConfigLabels(inProcessOutput), labels);
    }

    [SkippableFact]
    public async Task A_worker_that_cannot_start_or_was_built_from_other_sources_is_not_used_and_the_task_runs_in_MSBuild()
    {
        RequireWorker();
        var (archive, baseImage) = Inputs();
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage };
        var expected = Properties((await Sample("reference").RunAsync("BuildVddkImage", new Dictionary<string, string>(properties) { ["VddkNativeWorker"] = "false" }, "-getProperty:VddkImageDigest", "-getProperty:VddkVersion")).Output)["VddkImageDigest"];
        Assert.StartsWith("sha256:", expected);

        (string Name, string Script, string Said)[] cases =
        [
            ("exits", "#!/bin/sh\necho 'loader: GLIBC_2.99 not found' >&2\nexit 1\n", "did not start"),
            ("not-elf", "garbage, not a program\n", "could not be started"),
            ("stale", "#!/bin/sh\necho '{\"k\":\"ready\",\"build\":\"00000000000000000000000000000000\"}'\nread request\necho \"$request\" > \"$0.request\"\nexit 0\n", "was built from other sources"),
        ];
        foreach (var (name, script, said) in cases)
        {
            var folder = CopyTaskFolder(name, script);
            var (build, log) = await RunLoggedAsync(name, "BuildVddkImage", properties, "-p:VddkTasksDependsOn=", $"-p:VddkTasksAssembly={folder}/VddkBuild.Tasks.dll", "-getProperty:VddkImageDigest", "-getProperty:VddkVersion");
            Assert.True(build.Succeeded, $"{name}: {build}\n{log}");
            Assert.Contains($"native worker {folder}/linux-x64/vddkbuild-worker {said}", log);
            Assert.DoesNotContain("runs in the native worker", log);
            Assert.Equal(expected, Properties(build.Output)["VddkImageDigest"]);
            // The stale worker was told nothing: it saw its input closed, never a request.
            Assert.False(File.Exists(Path.Combine(folder, "linux-x64", "vddkbuild-worker.request")) && File.ReadAllText(Path.Combine(folder, "linux-x64", "vddkbuild-worker.request")).Trim().Length > 0, $"{name}: the stale worker got a request");
        }
    }

    [SkippableFact]
    public async Task Events_and_outputs_of_the_worker_reach_MSBuild_and_a_worker_that_dies_is_an_error_not_a_success()
    {
        RequireWorker();
        var (archive, baseImage) = Inputs();
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage, ["VddkImageTags"] = "a%3Bb", ["VddkRegistryUserName"] = "someone" };
        var environment = new Dictionary<string, string?> { ["VDDK_REGISTRY_PASSWORD"] = "s3cret-in-env" };

        // A worker that answers the protocol: a message, a stray line (kept for the detailed log, not a crash), a warning, an error-free finish with outputs.
        var talking = CopyTaskFolder("talking", """
            #!/bin/sh
            printf '{"k":"ready","build":"%s"}\n' "$(cat "$0.build")"
            read request
            printf '%s\n' "$request" > "$0.request"
            echo '{"k":"msg","imp":0,"text":"from the worker: high"}'
            echo 'a line that is not the protocol'
            echo '{"k":"warn","sub":null,"code":"VDDK1902","help":null,"file":"some/file","line":3,"col":4,"eline":0,"ecol":0,"text":"worker warning text"}'
            echo '{"k":"done","ok":true,"out":{"ImageDigest":"sha256:0123","Version":"9.9.9","ImageArchiveWritten":"/nowhere.tar"}}'
            """);
        var build = await new SampleProject(Path.Combine(_work, "talking-run")) { Environment = environment }
            .RunAsync("BuildVddkImage", properties, "-p:VddkTasksDependsOn=", $"-p:VddkTasksAssembly={talking}/VddkBuild.Tasks.dll", "-getProperty:VddkImageDigest", "-getProperty:VddkVersion", "-getProperty:VddkImageArchive",
                "-fl", $"-flp:logfile={_work}/talking.log;verbosity=normal");

        Assert.True(build.Succeeded, build.ToString());
        var log = File.ReadAllText(Path.Combine(_work, "talking.log"));
        Assert.Contains("from the worker: high", log);
        Assert.Contains("some/file(3,4): warning VDDK1902: worker warning text", log);
        var outputs = Properties(build.Output);
        Assert.Equal(("sha256:0123", "9.9.9", "/nowhere.tar"), (outputs["VddkImageDigest"], outputs["VddkVersion"], outputs["VddkImageArchive"]));
        var request = File.ReadAllText(Path.Combine(talking, "linux-x64", "vddkbuild-worker.request"));
        using (var document = JsonDocument.Parse(request))
        {
            var root = document.RootElement;
            Assert.Equal("BuildVddkImage", root.GetProperty("task").GetString());
            Assert.EndsWith("VddkBuild.Tasks.targets", root.GetProperty("project").GetString()); // the file holding the task node, as MSBuild names it
            var props = root.GetProperty("props");
            Assert.Equal(archive, props.GetProperty("Archive").GetString());
            Assert.Equal("a;b", props.GetProperty("ImageTags").GetString());
            Assert.Equal("someone", props.GetProperty("RegistryUserName").GetString());
            Assert.False(props.TryGetProperty("NativeWorker", out _));
        }
        Assert.DoesNotContain("s3cret-in-env", request);

        // A worker that takes the request and dies: an error, whatever it printed before.
        var dying = CopyTaskFolder("dying", """
            #!/bin/sh
            printf '{"k":"ready","build":"%s"}\n' "$(cat "$0.build")"
            read request
            echo '{"k":"msg","imp":1,"text":"half way"}'
            exit 7
            """);
        var died = await Sample("dying-run").RunAsync("BuildVddkImage", properties, "-p:VddkTasksDependsOn=", $"-p:VddkTasksAssembly={dying}/VddkBuild.Tasks.dll");
        Assert.False(died.Succeeded, died.ToString());
        Assert.Contains("error VDDK9999: The native worker running BuildVddkImage ended unexpectedly (exit code 7)", died.Output);
        Assert.Contains("-p:VddkNativeWorker=false", died.Output);
    }

    [SkippableFact]
    public async Task VddkNativeWorker_is_read_as_every_switch_is_off_turns_the_worker_off_and_a_typo_is_an_error()
    {
        RequireWorker();
        var (archive, baseImage) = Inputs();
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage };

        foreach (var off in new[] { "off", "0", "No" })
        {
            var (build, log) = await RunLoggedAsync("off-" + off, "BuildVddkImage", new Dictionary<string, string>(properties) { ["VddkNativeWorker"] = off });
            Assert.True(build.Succeeded, $"{off}: {build}");
            Assert.DoesNotContain("runs in the native worker", log);
            Assert.Contains("VddkBuild: image digest sha256:", log);
        }
        var (on, onLog) = await RunLoggedAsync("on-yes", "BuildVddkImage", new Dictionary<string, string>(properties) { ["VddkNativeWorker"] = "yes" });
        Assert.True(on.Succeeded, on.ToString());
        Assert.Contains("BuildVddkImage runs in the native worker", onLog);

        var typo = await Sample("typo").RunAsync("BuildVddkImage", new Dictionary<string, string>(properties) { ["VddkNativeWorker"] = "fasle" });
        Assert.False(typo.Succeeded, typo.ToString());
        Assert.Contains("error VDDK5002: VddkNativeWorker is 'fasle', but it must be true or false.", typo.Output);
    }

    [SkippableFact]
    public async Task A_worker_killed_by_a_signal_is_reported_as_killed_with_its_own_code_not_as_a_bug()
    {
        RequireWorker();
        var (archive, baseImage) = Inputs();
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage };
        // What the kernel's out-of-memory killer does to a worker half way through: SIGKILL.
        var killed = CopyTaskFolder("oom", """
            #!/bin/sh
            printf '{"k":"ready","build":"%s"}\n' "$(cat "$0.build")"
            read request
            echo '{"k":"msg","imp":1,"text":"half way"}'
            kill -KILL $$
            """);

        var build = await Sample("oom-run").RunAsync("BuildVddkImage", properties, "-p:VddkTasksDependsOn=", $"-p:VddkTasksAssembly={killed}/VddkBuild.Tasks.dll");

        Assert.False(build.Succeeded, build.ToString());
        Assert.Contains("error VDDK5004: The native worker running BuildVddkImage was killed by signal 9 (SIGKILL: most often the kernel's out-of-memory killer", build.Output);
        Assert.DoesNotContain("VDDK9999", build.Output);
        Assert.DoesNotContain("This is a bug", build.Output);
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Ctrl_C_ends_the_build_even_when_the_worker_no_longer_reads_its_input(bool beforeReady)
    {
        RequireWorker();
        var (archive, baseImage) = Inputs();
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage };
        // A worker stuck after it took the request, or before its first line: it ignores SIGINT and SIGTERM and never
        // looks at its input again (as a worker stopped or blocked in the kernel); its child keeps the output pipe open.
        var stuck = CopyTaskFolder("stuck", beforeReady
            ? """
              #!/bin/sh
              trap '' INT TERM
              echo started > "$0.request"
              while :; do sleep 1; done
              """
            : """
              #!/bin/sh
              trap '' INT TERM
              printf '{"k":"ready","build":"%s"}\n' "$(cat "$0.build")"
              read request
              printf '%s\n' "$request" > "$0.request"
              while :; do sleep 1; done
              """);
        var requested = Path.Combine(stuck, "linux-x64", "vddkbuild-worker.request");
        var sample = new SampleBuild(Path.Combine(_work, "stuck-run")) { BuildTasks = false };

        var run = await sample.RunAsync("BuildVddkImage", properties, [$"-p:VddkTasksAssembly={stuck}/VddkBuild.Tasks.dll"], async build =>
        {
            var clock = Stopwatch.StartNew();
            while (!File.Exists(requested))
            {
                Assert.False(build.HasExited, build.OutputSoFar);
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), "the worker never got its request:\n" + build.OutputSoFar);
                await Task.Delay(20);
            }
            await build.InterruptAsync();
        }, TimeSpan.FromMinutes(2));

        Assert.False(run.Succeeded, run.ToString());
        Assert.NotNull(run.StoppedAfterInterrupt);
        // The cancelled worker has ten seconds to clean up, then it is killed; MSBuild then ends as after any Ctrl+C.
        Assert.True(run.StoppedAfterInterrupt < TimeSpan.FromSeconds(30), $"the build took {run.StoppedAfterInterrupt} to stop after Ctrl+C");
        Assert.Empty(await run.SurvivorsAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("did not end within 10 s of the cancellation and was killed", run.Output);
        Assert.Contains("BuildVddkImage was cancelled", run.Output);
        Assert.DoesNotContain("VDDK9999", run.Output);
        Assert.DoesNotContain("VDDK5004", run.Output);
        // A cancelled task is not started again in MSBuild's process.
        Assert.DoesNotContain("VddkBuild: VDDK 8.0.1", run.Output);
    }

    /// <summary>A copy of the task folder whose worker is <paramref name="script"/> (the file NAME.build holds the task assembly's build identity).</summary>
    private string CopyTaskFolder(string name, string script)
    {
        var folder = Path.Combine(_work, "tasks-" + name);
        Directory.CreateDirectory(Path.Combine(folder, "linux-x64"));
        foreach (var file in Directory.EnumerateFiles(TaskFolder))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }
        var worker = Path.Combine(folder, "linux-x64", "vddkbuild-worker");
        File.WriteAllText(worker, script.Replace("\r\n", "\n") + (script.EndsWith('\n') ? string.Empty : "\n"));
        if (OperatingSystem.IsLinux())
        {
            File.SetUnixFileMode(worker, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        File.WriteAllText(worker + ".build", BuildIdentity(Path.Combine(folder, "VddkBuild.Tasks.dll")));
        return folder;
    }

    /// <summary>The module version id of a task assembly, as the worker states it (hex, no dashes).</summary>
    private static string BuildIdentity(string assembly)
    {
        using var pe = new PEReader(File.OpenRead(assembly));
        var metadata = pe.GetMetadataReader();
        return metadata.GetGuid(metadata.GetModuleDefinition().Mvid).ToString("N");
    }

    private static Dictionary<string, string> Properties(string output)
    {
        var json = output[output.IndexOf('{')..];
        using var document = JsonDocument.Parse(json);
        return document.RootElement.GetProperty("Properties").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? string.Empty);
    }

    /// <summary>The labels in the config of the single image in an OCI image archive.</summary>
    private static Dictionary<string, string> ConfigLabels(string ociArchive)
    {
        var folder = ociArchive + ".unpacked";
        Directory.CreateDirectory(folder);
        System.Formats.Tar.TarFile.ExtractToDirectory(ociArchive, folder, overwriteFiles: true);
        string Blob(string digest) => Path.Combine(folder, "blobs", "sha256", digest["sha256:".Length..]);
        using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "index.json")));
        using var manifest = JsonDocument.Parse(File.ReadAllText(Blob(index.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString()!)));
        using var config = JsonDocument.Parse(File.ReadAllText(Blob(manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!)));
        return config.RootElement.GetProperty("config").GetProperty("Labels").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
    }
}
