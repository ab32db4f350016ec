using System.IO.Compression;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>
/// The NuGet task package, packed once from this tree into a local feed, used by fresh projects in both of its forms:
/// a PackageReference and an MSBuild project SDK.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class TaskPackageTests(TaskPackageTests.PackedPackage package) : IClassFixture<TaskPackageTests.PackedPackage>
{
    [Fact]
    public void The_package_holds_the_task_assemblies_the_build_files_and_the_sdk_and_no_msbuild_or_lib_assemblies()
    {
        using var zip = ZipFile.OpenRead(package.Path);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("tasks/net10.0/VddkBuild.Tasks.dll", names);
        Assert.Contains("tasks/net10.0/VddkBuild.dll", names);
        Assert.Contains("tasks/net10.0/SharpCompress.dll", names);
        Assert.Contains("tasks/net10.0/Tomlyn.dll", names);
        Assert.Contains("build/VddkBuild.Tasks.props", names);
        Assert.Contains("build/VddkBuild.Tasks.targets", names);
        Assert.Contains("buildTransitive/VddkBuild.Tasks.targets", names);
        Assert.Contains("Sdk/Sdk.props", names);
        Assert.Contains("Sdk/Sdk.targets", names);
        Assert.DoesNotContain(names, n => n.Contains("Microsoft.Build", StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => n.StartsWith("lib/", StringComparison.Ordinal));
        // The native worker is built on linux-x64 machines (CI is one): there the package must carry it.
        if (System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier == "linux-x64")
        {
            Assert.Contains("tasks/net10.0/linux-x64/vddkbuild-worker", names);
        }
        using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
        var text = nuspec.ReadToEnd();
        Assert.Contains("<developmentDependency>true</developmentDependency>", text);
        Assert.Contains("<packageType name=\"MSBuildSdk\" />", text);
        Assert.Contains("<packageType name=\"Dependency\" />", text);
    }

    [Fact]
    public void The_packed_task_assembly_and_engine_are_ReadyToRun_images_and_the_dependencies_plain_IL()
    {
        // crossgen2 ships for these hosts only; elsewhere the package holds IL alone (ReadyToRun.targets).
        if (RuntimeInformation.OSArchitecture is not (Architecture.X64 or Architecture.Arm64))
        {
            return;
        }
        using var zip = ZipFile.OpenRead(package.Path);
        Assert.True(IsReadyToRun(zip, "tasks/net10.0/VddkBuild.Tasks.dll"));
        Assert.True(IsReadyToRun(zip, "tasks/net10.0/VddkBuild.dll"));
        Assert.True(IsReadyToRun(zip, "tasks/net10.0/System.IO.Hashing.dll"));
        Assert.False(IsReadyToRun(zip, "tasks/net10.0/SharpCompress.dll"));
    }

    /// <summary>A ReadyToRun image is an IL assembly whose CLI header points at a native-code header.</summary>
    private static bool IsReadyToRun(ZipArchive zip, string name)
    {
        using var memory = new MemoryStream();
        using (var entry = zip.GetEntry(name)!.Open())
        {
            entry.CopyTo(memory);
        }
        memory.Position = 0;
        using var pe = new PEReader(memory);
        var cli = pe.PEHeaders.CorHeader ?? throw new InvalidDataException($"{name} is not a .NET assembly");
        return cli.ManagedNativeHeaderDirectory.Size > 0;
    }

    [Fact]
    public async Task A_PackageReference_project_builds_the_image_with_the_same_digest_as_the_repository_sample()
    {
        var project = package.NewProjectDirectory("reference");
        File.WriteAllText(Path.Combine(project, "Vddk.csproj"), $"""
            <Project Sdk="Microsoft.Build.NoTargets/3.7.0">
              <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
              <ItemGroup><PackageReference Include="VddkBuild.Tasks" Version="{package.Version}" PrivateAssets="all" /></ItemGroup>
            </Project>
            """);
        var output = Path.Combine(project, "image.oci.tar");

        var build = await DotnetCli.RunAsync(project, ["build", "-t:BuildVddkImage", "-nologo", "-v:n", .. package.ImageProperties, $"-p:VddkImageArchive={output}", "-getProperty:VddkImageDigest"]);

        Assert.True(build.Succeeded, build.ToString());
        Assert.True(File.Exists(output));
        Assert.Equal(await package.RepositorySampleDigestAsync(), build.Output.Trim());
    }

    [Fact]
    public async Task An_sdk_project_needs_no_restore_and_builds_the_same_image_through_BuildVddkImage_and_the_default_target()
    {
        var project = package.NewProjectDirectory("sdk", onlyLocalFeed: true);
        // The SDK resolver fetches the package into this folder, and only there: nothing comes from an earlier run.
        var packages = Path.Combine(project, "packages");
        var environment = new Dictionary<string, string?> { ["NUGET_PACKAGES"] = packages };
        File.WriteAllText(Path.Combine(project, "vddk.proj"), $"""
            <Project Sdk="VddkBuild.Tasks/{package.Version}">
              <PropertyGroup><VddkRepository>team/vddk</VddkRepository></PropertyGroup>
            </Project>
            """);
        var explicitOutput = Path.Combine(project, "image.oci.tar");

        // No restore at all: the first command a user runs, with --no-restore, resolves the SDK and runs the target.
        var log = Path.Combine(project, "first.log");
        var build = await DotnetCli.RunAsync(project, ["build", "--no-restore", "-t:BuildVddkImage", "-nologo", "-v:n", .. package.ImageProperties, $"-p:VddkImageArchive={explicitOutput}", "-getProperty:VddkImageDigest",
            "-fl", $"-flp:logfile={log};verbosity=detailed"], environment);
        Assert.True(build.Succeeded, build.ToString());
        Assert.Equal(await package.RepositorySampleDigestAsync(), build.Output.Trim());
        if (System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier == "linux-x64")
        {
            // NuGet keeps no file modes: the worker unpacked from the package is made executable and used.
            Assert.Contains($"BuildVddkImage runs in the native worker {Path.Combine(packages, "vddkbuild.tasks", package.Version, "tasks", "net10.0", "linux-x64", "vddkbuild-worker")}", File.ReadAllText(log));
        }
        Assert.True(Directory.Exists(Path.Combine(packages, "vddkbuild.tasks", package.Version, "Sdk")), "the SDK resolver did not fetch the package into NUGET_PACKAGES");
        Assert.False(File.Exists(Path.Combine(project, "obj", "project.assets.json")), "an SDK project must not need a NuGet restore");

        // Plain `dotnet build` (its implicit restore included) runs Build = BuildVddkImage into bin/vddk: the same image.
        var plain = await DotnetCli.RunAsync(project, ["build", "-nologo", "-v:m", .. package.ImageProperties], environment);
        Assert.True(plain.Succeeded, plain.ToString());
        var defaultOutput = Path.Combine(project, "bin", "vddk", $"vddk-{SampleVddkArchiveOptions.Small.Version}.oci.tar");
        Assert.True(File.Exists(defaultOutput), plain.ToString());
        Assert.Equal(File.ReadAllBytes(explicitOutput), File.ReadAllBytes(defaultOutput));
        Assert.Equal("team/vddk", (await DotnetCli.RunAsync(project, ["build", "--no-restore", "-nologo", "-getProperty:VddkRepository"], environment)).Output.Trim());

        // dotnet clean removes the default output and layer cache, and leaves the rest of the project alone.
        var clean = await DotnetCli.RunAsync(project, ["clean", "-nologo", "-v:m"], environment);
        Assert.True(clean.Succeeded, clean.ToString());
        Assert.False(Directory.Exists(Path.Combine(project, "bin", "vddk")));
        Assert.False(Directory.Exists(Path.Combine(project, "obj", "vddk")));
        Assert.True(File.Exists(explicitOutput));
    }

    [Fact]
    public async Task An_ordinary_app_referencing_the_package_still_builds_and_packs_with_no_VDDK_property_set()
    {
        var project = package.NewProjectDirectory("app", onlyLocalFeed: true);
        File.WriteAllText(Path.Combine(project, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework></PropertyGroup>
              <ItemGroup><PackageReference Include="VddkBuild.Tasks" Version="{package.Version}" PrivateAssets="all" /></ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Program.cs"), "System.Console.WriteLine(\"app\");");

        var build = await DotnetCli.RunAsync(project, ["build", "-nologo", "-v:m"]);
        var pack = await DotnetCli.RunAsync(project, ["pack", "-nologo", "-v:m", "-o", Path.Combine(project, "out")]);

        Assert.True(build.Succeeded, build.ToString());
        Assert.DoesNotContain("VDDK", build.Output);
        Assert.True(File.Exists(Path.Combine(project, "bin", "Debug", "net10.0", "App.dll")));
        Assert.False(Directory.Exists(Path.Combine(project, "bin", "Debug", "net10.0", "vddk")), "a plain build must not run the VDDK targets");
        Assert.True(pack.Succeeded, pack.ToString());
        // PrivateAssets="all", as README shows: the app's own package does not drag the task package into its consumers.
        using var zip = ZipFile.OpenRead(Directory.GetFiles(Path.Combine(project, "out"), "App.*.nupkg").Single());
        using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
        Assert.DoesNotContain("VddkBuild.Tasks", nuspec.ReadToEnd());
    }

    [Fact]
    public async Task Clean_in_a_project_that_references_the_package_deletes_the_default_vddk_folders_and_nothing_else()
    {
        var project = package.NewProjectDirectory("clean", onlyLocalFeed: true);
        File.WriteAllText(Path.Combine(project, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework></PropertyGroup>
              <ItemGroup><PackageReference Include="VddkBuild.Tasks" Version="{package.Version}" PrivateAssets="all" /></ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Program.cs"), "System.Console.WriteLine(\"app\");");
        var output = Path.Combine(project, "bin", "Debug", "net10.0", "vddk");
        var intermediate = Path.Combine(project, "obj", "vddk");
        var keep = Path.Combine(project, "bin", "Debug", "net10.0", "keep.txt");

        var publish = await DotnetCli.RunAsync(project, ["build", "-t:PublishVddk", "-nologo", "-v:m", .. package.ImageProperties, "-p:VddkUseCluster=false"]);
        Assert.True(publish.Succeeded, publish.ToString());
        Assert.True(Directory.Exists(output) && Directory.Exists(intermediate), publish.ToString());
        File.WriteAllText(keep, "not ours");
        var clean = await DotnetCli.RunAsync(project, ["clean", "-nologo", "-v:m"]);

        Assert.True(clean.Succeeded, clean.ToString());
        Assert.False(Directory.Exists(output), "dotnet clean left the image archive folder");
        Assert.False(Directory.Exists(intermediate), "dotnet clean left the layer cache");
        Assert.True(File.Exists(keep));
    }

    [Fact]
    public async Task A_multi_targeting_project_runs_PublishVddk_once_in_its_outer_build()
    {
        var project = package.NewProjectDirectory("multi", onlyLocalFeed: true);
        // <TargetFrameworks> (even with one framework) makes the command-line targets run in the outer build, which
        // NuGet gives buildMultiTargeting/ and not build/.
        File.WriteAllText(Path.Combine(project, "Lib.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><TargetFrameworks>net10.0</TargetFrameworks></PropertyGroup>
              <ItemGroup><PackageReference Include="VddkBuild.Tasks" Version="{package.Version}" /></ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(project, "Lib.cs"), "namespace Lib; public static class Marker { }");

        var build = await DotnetCli.RunAsync(project, ["build", "-nologo", "-v:m"]);
        var publish = await DotnetCli.RunAsync(project, ["build", "-t:PublishVddk", "-nologo", "-v:n", .. package.ImageProperties, "-p:VddkUseCluster=false", "-getProperty:VddkImageDigest"]);

        Assert.True(build.Succeeded, build.ToString());
        Assert.True(publish.Succeeded, publish.ToString());
        Assert.Equal(await package.RepositorySampleDigestAsync(), publish.Output.Trim());
        Assert.True(File.Exists(Path.Combine(project, "bin", "Debug", "vddk", $"vddk-{SampleVddkArchiveOptions.Small.Version}.oci.tar")));
    }

    /// <summary>The package packed once for the class, its local feed, and the inputs every project builds from.</summary>
    public sealed class PackedPackage : IAsyncLifetime
    {
        private readonly string _work = Directory.CreateTempSubdirectory("vddk-package-").FullName;
        private Task<string>? _sampleDigest;

        // A version no earlier run used, so NuGet's global package cache cannot hand back a stale copy.
        public string Version { get; } = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmssfff}";

        public string Feed => System.IO.Path.Combine(_work, "feed");

        public string Path => System.IO.Path.Combine(Feed, $"VddkBuild.Tasks.{Version}.nupkg");

        public string Archive { get; private set; } = string.Empty;

        public string BaseImage { get; private set; } = string.Empty;

        public string[] ImageProperties => [$"-p:VddkArchive={Archive}", $"-p:VddkBaseImage={BaseImage}"];

        public async Task InitializeAsync()
        {
            // As ./build.sh pack does: the worker's project builds the tasks and (linux-x64) the native worker from
            // the same compilation; the pack's own build then finds the tasks up to date and packs both.
            var build = await DotnetCli.RunAsync(DotnetCli.RepoRoot, ["build", "src/VddkBuild.Worker", "-c", "Release", "-p:Version=" + Version, "-nologo", "-clp:ErrorsOnly"]);
            Assert.True(build.Succeeded, build.ToString());
            var pack = await DotnetCli.RunAsync(DotnetCli.RepoRoot, ["pack", "src/VddkBuild.Tasks", "-c", "Release", "-o", Feed, "-p:Version=" + Version, "-nologo"]);
            Assert.True(pack.Succeeded, pack.ToString());
            Archive = SampleVddkArchive.WriteTo(System.IO.Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);
            BaseImage = StandInBaseImage.WriteOciLayout(System.IO.Path.Combine(_work, "base")).Reference;
        }

        /// <summary>
        /// A new project folder whose nuget.config adds the local feed; with <paramref name="onlyLocalFeed"/> it is the
        /// only source (an SDK project needs nothing else; a NoTargets project needs that SDK from the usual feed).
        /// </summary>
        public string NewProjectDirectory(string name, bool onlyLocalFeed = false)
        {
            var project = System.IO.Path.Combine(_work, name);
            Directory.CreateDirectory(project);
            File.WriteAllText(System.IO.Path.Combine(project, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>{(onlyLocalFeed ? "<clear />" : string.Empty)}
                    <add key="local" value="{Feed}" />
                  </packageSources>
                </configuration>
                """);
            return project;
        }

        /// <summary>The digest samples/PublishVddk (the in-repo tasks) gives the same archive and base, computed once.</summary>
        public Task<string> RepositorySampleDigestAsync() => _sampleDigest ??= SampleDigestAsync();

        private async Task<string> SampleDigestAsync()
        {
            var sample = new SampleProject(System.IO.Path.Combine(_work, "sample"));
            var reference = await sample.RunForPropertiesAsync("BuildVddkImage", new Dictionary<string, string> { ["VddkArchive"] = Archive, ["VddkBaseImage"] = BaseImage }, "VddkImageDigest");
            return reference["VddkImageDigest"];
        }

        public Task DisposeAsync()
        {
            Directory.Delete(_work, recursive: true);
            return Task.CompletedTask;
        }
    }
}
