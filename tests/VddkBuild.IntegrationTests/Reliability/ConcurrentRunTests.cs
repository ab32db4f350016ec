using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Images;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// Two PublishVddk runs of the same project at the same time (two CI jobs, or a user starting it twice): they share
/// obj/ (the content-addressed layer file) and the output path (the OCI archive rename). Both succeed and agree.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class ConcurrentRunTests(ITestOutputHelper output)
{
    /// <summary>Builds the in-repo task assembly once, so the concurrent runs do not build it at the same time.</summary>
    private static async Task PrepareAsync(SampleBuild sample)
    {
        var prepared = await sample.RunAsync("_VddkBuildInRepoTasks", new Dictionary<string, string>());
        Assert.True(prepared.Succeeded, prepared.ToString());
    }

    [SkippableFact]
    public async Task Two_simultaneous_pushes_of_the_same_image_both_succeed_with_the_same_digest()
    {
        await using var world = await PushWorld.StartAsync(output);
        await PrepareAsync(world.Sample);
        // Uploads are held a moment at the proxy so that the two pushes are certainly in flight together.
        world.Proxy.Add("hold", TestSupport.Faults.RequestMatch.BlobData, TestSupport.Faults.RegistryFault.Delay(TimeSpan.FromSeconds(1)), times: int.MaxValue);
        var shared = new SampleBuild(world.Sample.WorkDirectory) { BuildTasks = false };

        var runs = await Task.WhenAll(
            shared.RunAsync("PublishVddk", world.PublishProperties("8.0.1"), "--no-restore"),
            shared.RunAsync("PublishVddk", world.PublishProperties("8.0.1"), "--no-restore"));

        foreach (var run in runs)
        {
            output.WriteLine(run.ToString());
            Assert.True(run.Succeeded, run.ToString());
        }
        Assert.NotNull(runs[0].Digest);
        Assert.Equal(runs[0].Digest, runs[1].Digest);
        var state = await world.AssertTagIsAbsentOrCompleteAsync("8.0.1");
        Assert.Equal(runs[0].Digest, state.ManifestDigest);
        var layers = Path.Combine(shared.IntermediateDirectory, "layers");
        Assert.Empty(Directory.EnumerateFiles(layers, "*.tmp"));
    }

    [SkippableFact]
    public async Task Two_simultaneous_builds_to_the_same_OCI_archive_both_succeed_and_leave_one_complete_archive()
    {
        var work = Directory.CreateTempSubdirectory("vddk-concurrent-").FullName;
        try
        {
            var archive = TestSupport.Archives.SampleVddkArchive.WriteTo(Path.Combine(work, "in"), TestSupport.Archives.SampleVddkArchiveOptions.Small);
            var baseImage = StandInBaseImage.WriteOciLayout(Path.Combine(work, "base")).Reference;
            var sample = new SampleBuild(Path.Combine(work, "build"));
            await PrepareAsync(sample);
            var shared = new SampleBuild(sample.WorkDirectory) { BuildTasks = false };
            var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage, ["VddkUseCluster"] = "false" };

            var runs = await Task.WhenAll(
                shared.RunAsync("PublishVddk", properties, "--no-restore", "-getProperty:VddkImageDigest"),
                shared.RunAsync("PublishVddk", properties, "--no-restore", "-getProperty:VddkImageDigest"));

            foreach (var run in runs)
            {
                Assert.True(run.Succeeded, run.ToString());
            }
            Assert.StartsWith("sha256:", runs[0].Output.Trim());
            Assert.Equal(runs[0].Output.Trim(), runs[1].Output.Trim());
            var written = Directory.EnumerateFiles(shared.OutputDirectory, "*", SearchOption.AllDirectories).ToList();
            Assert.Equal([Path.Combine(shared.OutputDirectory, "vddk-8.0.1.oci.tar")], written);
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(shared.IntermediateDirectory, "layers"), "*.tmp"));
            using var sandbox = new TestSupport.Infrastructure.ContainerToolsSandbox();
            using var inspect = await new TestSupport.Infrastructure.Skopeo(sandbox).InspectAsync($"oci-archive:{written[0]}:8.0.1");
            Assert.Equal(runs[0].Output.Trim(), inspect.RootElement.GetProperty("Digest").GetString());
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
