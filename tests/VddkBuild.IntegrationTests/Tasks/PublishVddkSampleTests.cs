using System.Security.Cryptography;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Tasks;

[Collection(MSBuildCollection.Name)]
public sealed class PublishVddkSampleTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-sample-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private (string Archive, string BaseImage) Inputs(SampleVddkArchiveOptions? options = null)
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), options ?? SampleVddkArchiveOptions.Small);
        var baseImage = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference;
        return (archive, baseImage);
    }

    [SkippableFact]
    public async Task PublishVddk_without_a_registry_writes_an_OCI_archive_that_skopeo_reads_and_the_Forklift_check_passes()
    {
        Skopeo.Require();
        Podman.Require();
        var (archive, baseImage) = Inputs();
        var sample = new SampleProject(_work);

        // VddkUseCluster=false: without a registry, a kubeconfig on the machine would otherwise send the image to that cluster.
        var result = await sample.RunAsync("PublishVddk", new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage, ["VddkUseCluster"] = "false" });

        Assert.True(result.Succeeded, result.ToString());
        var imageArchive = Path.Combine(sample.OutputDirectory, "vddk-8.0.1.oci.tar");
        Assert.Contains($"image was written to {imageArchive}", result.Output);
        Assert.Contains("skopeo copy oci-archive:", result.Output);
        using var sandbox = new ContainerToolsSandbox();
        using var inspect = await new Skopeo(sandbox).InspectAsync($"oci-archive:{imageArchive}:8.0.1");
        var digest = inspect.RootElement.GetProperty("Digest").GetString()!;
        Assert.Contains($"nothing was pushed (no VddkRegistry set; VddkUseCluster=false), so the image was written to {imageArchive} only.", result.Output);
        // What to give Forklift after the printed skopeo copy: skopeo keeps the manifest, so the digest is the archive's.
        Assert.Contains($"then Forklift's vddkInitImage is <registry>/openshift-mtv/vddk@{digest}", result.Output);
        // The digest is printed once by BuildVddkImage and once in the Forklift reference, not a third time.
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Count(result.Output, digest));
        Assert.Equal("8.0.1", inspect.RootElement.GetProperty("Labels").GetProperty("org.opencontainers.image.version").GetString());
        var opt = await ForkliftCheck.RunInitContainerAsync(new Podman(sandbox), $"oci-archive:{imageArchive}:8.0.1");
        ForkliftCheck.AssertVddkTree(opt);
    }

    [SkippableFact]
    public async Task The_printed_skopeo_command_names_an_image_of_an_archive_with_several_tags()
    {
        Skopeo.Require();
        var (archive, baseImage) = Inputs();
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync("PublishVddk", new Dictionary<string, string>
        {
            ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage, ["VddkUseCluster"] = "false", ["VddkImageTags"] = "latest%3B8.0.1",
        });

        Assert.True(result.Succeeded, result.ToString());
        // skopeo refuses oci-archive:FILE when index.json holds several entries ("more than one image in oci, choose an image").
        var printed = System.Text.RegularExpressions.Regex.Match(result.Output, @"skopeo copy (oci-archive:\S+) docker://\S+/openshift-mtv/vddk:(\S+)");
        Assert.True(printed.Success, result.Output);
        Assert.Equal("latest", printed.Groups[2].Value);
        using var sandbox = new ContainerToolsSandbox();
        using var inspect = await new Skopeo(sandbox).InspectAsync(printed.Groups[1].Value);
        Assert.Contains(inspect.RootElement.GetProperty("Digest").GetString()!, result.Output);
    }

    [Fact]
    public async Task BuildVddkImage_sets_version_build_number_and_digest_properties_and_is_reproducible()
    {
        var (archive, baseImage) = Inputs(SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 2_000_000, DocumentationPages = 20 });
        var first = new SampleProject(Path.Combine(_work, "first"));
        var second = new SampleProject(Path.Combine(_work, "second"));
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage };

        var a = await first.RunForPropertiesAsync("BuildVddkImage", properties, "VddkVersion", "VddkBuildNumber", "VddkImageDigest", "VddkImageArchive");
        var b = await second.RunForPropertiesAsync("BuildVddkImage", properties, "VddkVersion", "VddkBuildNumber", "VddkImageDigest", "VddkImageArchive");

        Assert.Equal("9.0.0.0", a["VddkVersion"]);
        Assert.Equal("24742305", a["VddkBuildNumber"]);
        Assert.StartsWith("sha256:", a["VddkImageDigest"]);
        Assert.Equal(a["VddkImageDigest"], b["VddkImageDigest"]);
        Assert.NotEqual(a["VddkImageArchive"], b["VddkImageArchive"]);
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(a["VddkImageArchive"])), SHA256.HashData(File.ReadAllBytes(b["VddkImageArchive"])));
    }

    [Fact]
    public async Task A_broken_libvixDiskLib_chain_fails_with_VDDK1006_and_leaves_nothing_behind()
    {
        var archive = Path.Combine(_work, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        new VddkArchiveBuilder().AddMinimalVddk().Remove(VddkArchiveBuilder.Distrib("lib64/libvixDiskLib.so.8.0.1")).Write(archive);
        var baseImage = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference;
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync("PublishVddk", new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage, ["VddkUseCluster"] = "false" });

        Assert.False(result.Succeeded, result.ToString());
        Assert.Matches("error VDDK100[56]", result.Output);
        Assert.False(Directory.Exists(sample.OutputDirectory) && Directory.EnumerateFileSystemEntries(sample.OutputDirectory, "*", SearchOption.AllDirectories).Any(),
            "the failed build left files in the output folder");
        var layers = Path.Combine(sample.IntermediateDirectory, "layers");
        Assert.False(Directory.Exists(layers) && Directory.EnumerateFiles(layers).Any(), "the failed build left a layer file");
    }

    [Fact]
    public async Task A_missing_archive_property_is_VDDK5001_and_a_missing_file_is_VDDK1001()
    {
        var sample = new SampleProject(_work);

        var unset = await sample.RunAsync("BuildVddkImage", new Dictionary<string, string>());
        var missing = await sample.RunAsync("BuildVddkImage", new Dictionary<string, string> { ["VddkArchive"] = Path.Combine(_work, "nope.tar.gz"), ["VddkBaseImage"] = "oci:" + _work });

        Assert.False(unset.Succeeded);
        Assert.Contains("error VDDK5001", unset.Output);
        Assert.Contains("VddkArchive", unset.Output);
        Assert.False(missing.Succeeded);
        Assert.Contains("error VDDK1001", missing.Output);
    }

    [SkippableFact]
    public async Task BuildVddkImage_with_VddkAddSoname8Link_passes_the_Forklift_check_and_an_older_vddk_only_warns_VDDK1904()
    {
        Skopeo.Require();
        Podman.Require();
        var (archive, baseImage) = Inputs(SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 2_000_000, DocumentationPages = 20 });
        var vddk8 = SampleVddkArchive.WriteTo(Path.Combine(_work, "in8"), SampleVddkArchiveOptions.Small);
        var sample = new SampleProject(_work);
        var plain = new SampleProject(Path.Combine(_work, "plain"));
        var properties = new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage, ["VddkAddSoname8Link"] = "true" };

        var with = await sample.RunForPropertiesAsync("BuildVddkImage", properties, "VddkImageDigest", "VddkImageArchive");
        var without = await plain.RunForPropertiesAsync("BuildVddkImage", new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage }, "VddkImageDigest");
        var older = await sample.RunAsync("BuildVddkImage", new Dictionary<string, string> { ["VddkArchive"] = vddk8, ["VddkBaseImage"] = baseImage, ["VddkAddSoname8Link"] = "true" });

        Assert.NotEqual(without["VddkImageDigest"], with["VddkImageDigest"]);
        using var sandbox = new ContainerToolsSandbox();
        var opt = await ForkliftCheck.RunInitContainerAsync(new Podman(sandbox), $"oci-archive:{with["VddkImageArchive"]}:9.0.0.0");
        ForkliftCheck.AssertVddkTree(opt);
        var so8 = new FileInfo(Path.Combine(opt, ForkliftCheck.TreeName, "lib64", "libvixDiskLib.so.8"));
        Assert.Equal("libvixDiskLib.so.9.0.0.0", so8.LinkTarget);
        Assert.True(File.Exists(so8.FullName), "libvixDiskLib.so.8 does not lead to the library in the copied tree");
        Assert.True(older.Succeeded, older.ToString());
        Assert.Contains("warning VDDK1904", older.Output);
    }

    [Fact]
    public async Task ExtractVddk_with_VddkAddSoname8Link_adds_the_relative_link_to_a_vddk9_tree()
    {
        var (archive, _) = Inputs(SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 2_000_000, DocumentationPages = 20 });
        var sample = new SampleProject(_work);
        var target = Path.Combine(_work, "extracted");

        var result = await sample.RunAsync("ExtractVddk", new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkExtractDirectory"] = target, ["VddkAddSoname8Link"] = "true" });

        Assert.True(result.Succeeded, result.ToString());
        var so8 = new FileInfo(Path.Combine(target, "vmware-vix-disklib-distrib", "lib64", "libvixDiskLib.so.8"));
        Assert.Equal("libvixDiskLib.so.9.0.0.0", so8.LinkTarget);
        Assert.True(File.Exists(so8.FullName));
    }

    [Fact]
    public async Task ExtractVddk_unpacks_the_tree_with_its_symlink_chains()
    {
        var (archive, _) = Inputs();
        var sample = new SampleProject(_work);
        var target = Path.Combine(_work, "extracted");

        var result = await sample.RunAsync("ExtractVddk", new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkExtractDirectory"] = target });

        Assert.True(result.Succeeded, result.ToString());
        var so = new FileInfo(Path.Combine(target, "vmware-vix-disklib-distrib", "lib64", "libvixDiskLib.so"));
        Assert.Equal("libvixDiskLib.so.8", so.LinkTarget);
        Assert.Equal("libvixDiskLib.so.8.0.1", new FileInfo(Path.Combine(so.DirectoryName!, "libvixDiskLib.so.8")).LinkTarget);
        Assert.True(File.Exists(Path.Combine(so.DirectoryName!, "libvixDiskLib.so.8.0.1")));
    }

    [Theory]
    [InlineData("true")]
    [InlineData("false")]
    public async Task A_relative_local_base_image_in_a_project_is_found_from_the_project_folder(string nativeWorker)
    {
        // The project names its base as a path next to itself; the build runs from another folder. It used to be
        // looked for next to VddkBuild's own targets file (the file MSBuild names as holding the task node).
        var (archive, _) = Inputs();
        var folder = Path.Combine(_work, "project");
        StandInBaseImage.WriteOciLayout(Path.Combine(folder, "base-layout"));
        var project = Path.Combine(folder, "Vddk.proj");
        var sdk = Path.Combine(DotnetCli.RepoRoot, "src", "VddkBuild.Tasks", "Sdk");
        var tasks = Path.Combine(DotnetCli.RepoRoot, "src", "VddkBuild.Tasks", "bin", "Release", "net10.0", "tasks", "VddkBuild.Tasks.dll");
        File.WriteAllText(project, $"""
            <Project>
              <Import Project="{sdk}/Sdk.props" />
              <PropertyGroup>
                <VddkTasksAssembly>{tasks}</VddkTasksAssembly>
                <VddkBaseImage>oci:base-layout:latest</VddkBaseImage>
              </PropertyGroup>
              <Import Project="{sdk}/Sdk.targets" />
            </Project>
            """);
        var elsewhere = Directory.CreateDirectory(Path.Combine(_work, "elsewhere")).FullName;

        var result = await DotnetCli.RunAsync(elsewhere, ["build", project, "-t:BuildVddkImage", "-nologo", "-v:m", $"-p:VddkArchive={archive}", $"-p:VddkNativeWorker={nativeWorker}"]);

        Assert.True(result.Succeeded, result.ToString());
        Assert.Single(Directory.EnumerateFiles(Path.Combine(folder, "bin", "vddk"), "*.oci.tar"));
    }
}
