using System.Diagnostics;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Faults;
using VddkBuild.TestSupport.Images;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// Ctrl+C (SIGINT to the build's process group) while PublishVddk extracts, writes the layer, or uploads: the build
/// stops within seconds, leaves nothing under a final name and no temp files, and the next run succeeds.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class CancellationTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Big enough that each phase lasts long enough to be interrupted on a fast machine.</summary>
    private static readonly SampleVddkArchiveOptions LargeArchive = SampleVddkArchiveOptions.Vddk8 with { TargetUnpackedBytes = 150_000_000, DocumentationPages = 50 };

    /// <summary>
    /// Extraction of the compressed archive above takes a tenth of a second once the small files are out, less than
    /// Ctrl+C needs to reach the task; 600 MB of uncompressed tar (cheap to generate) keeps it busy for long enough.
    /// </summary>
    private static readonly SampleVddkArchiveOptions LargeTar = LargeArchive with { TargetUnpackedBytes = 600_000_000, Compression = ArchiveCompression.None };

    private static readonly TimeSpan StopsWithin = TimeSpan.FromSeconds(5);

    private readonly string _work = Directory.CreateTempSubdirectory("vddk-cancel-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    /// <summary>
    /// Polls on a thread of its own, not the thread pool: while the build saturates both cores, pool threads (and
    /// Task.Delay's continuations) can be held back longer than the moment being waited for lasts.
    /// </summary>
    private static Task WaitUntilAsync(RunningBuild build, Func<bool> condition, string what) =>
        Task.Factory.StartNew(() =>
        {
            var clock = Stopwatch.StartNew();
            while (!condition())
            {
                Assert.False(build.HasExited, $"the build ended before {what}:\n{build.OutputSoFar}");
                Assert.True(clock.Elapsed < TimeSpan.FromMinutes(2), $"timed out waiting for {what}:\n{build.OutputSoFar}");
                Thread.Sleep(2);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static bool AnyTempBelow(string directory, out string found)
    {
        found = Directory.Exists(directory)
            ? Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories).FirstOrDefault(p => Path.GetFileName(p).EndsWith(".tmp", StringComparison.Ordinal) || Path.GetFileName(p).EndsWith(".old", StringComparison.Ordinal)) ?? string.Empty
            : string.Empty;
        return found.Length > 0;
    }

    /// <summary>Files the build left in its TMPDIR, apart from MSBuild's own scratch folder.</summary>
    private static IReadOnlyList<string> TempLitter(SampleBuild sample) =>
        Directory.Exists(sample.TempDirectory)
            ? [.. Directory.EnumerateFileSystemEntries(sample.TempDirectory, "*", SearchOption.AllDirectories)
                .Where(p => !Path.GetRelativePath(sample.TempDirectory, p).StartsWith("MSBuildTemp", StringComparison.Ordinal)
                    && !Path.GetRelativePath(sample.TempDirectory, p).StartsWith("NuGetScratch", StringComparison.Ordinal)
                    && !Path.GetRelativePath(sample.TempDirectory, p).StartsWith(".dotnet", StringComparison.Ordinal)
                    && !File.GetAttributes(p).HasFlag(FileAttributes.Directory))]
            : [];

    private async Task AssertStoppedCleanlyAsync(BuildRun run, SampleBuild sample, params string[] foldersWithoutTemps)
    {
        var survivors = await run.SurvivorsAsync(StopsWithin);
        Assert.True(survivors.Count == 0, "processes of the cancelled build still run: " + string.Join("; ", survivors));
        output.WriteLine($"interrupted build: exit {run.ExitCode}, stopped {run.StoppedAfterInterrupt?.TotalSeconds:0.00} s after SIGINT");
        var cancelled = run.Output.IndexOf("Attempting to cancel", StringComparison.Ordinal);
        output.WriteLine(cancelled >= 0 ? run.Output[cancelled..] : run.Output);
        Assert.False(run.Succeeded, "the interrupted build reported success");
        Assert.NotNull(run.StoppedAfterInterrupt);
        Assert.True(run.StoppedAfterInterrupt < StopsWithin, $"the build took {run.StoppedAfterInterrupt} to stop after Ctrl+C");
        Assert.DoesNotContain("VDDK9999", run.Output);
        foreach (var folder in foldersWithoutTemps)
        {
            Assert.False(AnyTempBelow(folder, out var temp), $"temp left behind: {temp}");
        }
        Assert.Empty(TempLitter(sample));
    }

    [SkippableFact]
    public async Task Ctrl_C_during_extraction_leaves_no_folder_and_the_next_run_succeeds()
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), LargeTar);
        var sample = new SampleBuild(Path.Combine(_work, "build"));
        var target = Path.Combine(sample.WorkDirectory, "extract", "vddk");
        var parent = Path.GetDirectoryName(target)!;
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkExtractDirectory"] = target };

        var run = await sample.RunAsync("ExtractVddk", properties, [], async build =>
        {
            await WaitUntilAsync(build, () => Directory.Exists(parent) && Directory.EnumerateDirectories(parent, ".vddk.vddkbuild-*.tmp").Any(d => Directory.EnumerateFileSystemEntries(d, "*", SearchOption.AllDirectories).Count() > 10), "extraction started");
            await build.InterruptAsync();
        });

        await AssertStoppedCleanlyAsync(run, sample, parent);
        Assert.False(Directory.Exists(target), "a partial tree was left under the final name");
        var again = await sample.RunAsync("ExtractVddk", properties);
        Assert.True(again.Succeeded, again.ToString());
        Assert.True(File.Exists(Path.Combine(target, "vmware-vix-disklib-distrib", "lib64", "libvixDiskLib.so.8.0.1")));
    }

    [SkippableFact]
    public async Task Ctrl_C_while_the_layer_is_written_leaves_no_layer_or_archive_and_the_next_run_succeeds()
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), LargeArchive);
        var baseImage = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference;
        var sample = new SampleBuild(Path.Combine(_work, "build"));
        var layers = Path.Combine(sample.IntermediateDirectory, "layers");
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage };

        var run = await sample.RunAsync("BuildVddkImage", properties, [], async build =>
        {
            await WaitUntilAsync(build, () => Directory.Exists(layers) && new DirectoryInfo(layers).EnumerateFiles("*.tmp").Any(f => f.Exists && f.Length > 1_000_000), "the layer file is being written");
            await build.InterruptAsync();
        });

        await AssertStoppedCleanlyAsync(run, sample, sample.IntermediateDirectory, sample.OutputDirectory);
        Assert.False(Directory.Exists(layers) && Directory.EnumerateFiles(layers).Any(), "a layer was published although the build was cancelled");
        Assert.False(Directory.Exists(sample.OutputDirectory) && Directory.EnumerateFiles(sample.OutputDirectory, "*", SearchOption.AllDirectories).Any(), "an image archive was written");
        var again = await sample.RunAsync("BuildVddkImage", properties);
        Assert.True(again.Succeeded, again.ToString());
        Assert.Single(Directory.EnumerateFiles(sample.OutputDirectory, "*.oci.tar", SearchOption.AllDirectories));
    }

    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Ctrl_C_during_the_upload_stops_promptly_leaves_no_tag_and_the_next_run_succeeds(bool wholeProcessGroup)
    {
        await using var world = await PushWorld.StartAsync(output);
        // Blob uploads are held at the proxy: the build is interrupted while it waits for the registry.
        world.Proxy.Add("hold uploads", RequestMatch.BlobData, RegistryFault.Delay(TimeSpan.FromSeconds(60)), times: int.MaxValue);

        var run = await world.Sample.RunAsync("PublishVddk", world.PublishProperties("8.0.1"), [], async build =>
        {
            await WaitUntilAsync(build, () => world.Proxy.Injected.Count > 0, "the upload started");
            await Task.Delay(200);
            await build.InterruptAsync(wholeProcessGroup);
        });

        await AssertStoppedCleanlyAsync(run, world.Sample, world.Sample.IntermediateDirectory, world.Sample.OutputDirectory);
        var state = await world.AssertTagIsAbsentOrCompleteAsync("8.0.1");
        Assert.False(state.Exists, "the tag was written although the upload was cancelled");
        world.Proxy.Clear();
        var again = await world.PublishAsync("8.0.1");
        Assert.True(again.Succeeded, again.ToString());
        Assert.Equal(again.Digest, (await world.AssertTagIsAbsentOrCompleteAsync("8.0.1")).ManifestDigest);
    }
}
