using System.IO.Compression;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>The NuGet task package, packed from this tree, used by a fresh project from a local feed.</summary>
[Collection(MSBuildCollection.Name)]
public sealed class TaskPackageTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-package-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task The_packed_package_builds_the_image_in_a_fresh_project_with_the_same_digest_as_the_repository_sample()
    {
        // A version no earlier run used, so NuGet's global package cache cannot hand back a stale copy.
        var version = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmssfff}";
        var feed = Path.Combine(_work, "feed");
        var pack = await DotnetCli.RunAsync(DotnetCli.RepoRoot, ["pack", "src/VddkBuild.Tasks", "-c", "Release", "-o", feed, "-p:Version=" + version, "-nologo"]);
        Assert.True(pack.Succeeded, pack.ToString());

        var package = Path.Combine(feed, $"VddkBuild.Tasks.{version}.nupkg");
        using (var zip = ZipFile.OpenRead(package))
        {
            var names = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("tasks/net10.0/VddkBuild.Tasks.dll", names);
            Assert.Contains("tasks/net10.0/VddkBuild.dll", names);
            Assert.Contains("tasks/net10.0/SharpCompress.dll", names);
            Assert.Contains("build/VddkBuild.Tasks.targets", names);
            Assert.Contains("buildTransitive/VddkBuild.Tasks.targets", names);
            Assert.DoesNotContain(names, n => n.Contains("Microsoft.Build", StringComparison.Ordinal));
            Assert.DoesNotContain(names, n => n.StartsWith("lib/", StringComparison.Ordinal));
            using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
            Assert.Contains("<developmentDependency>true</developmentDependency>", nuspec.ReadToEnd());
        }

        var project = Path.Combine(_work, "fresh");
        Directory.CreateDirectory(project);
        File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(project, "Vddk.csproj"), $"""
            <Project Sdk="Microsoft.Build.NoTargets/3.7.0">
              <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
              <ItemGroup><PackageReference Include="VddkBuild.Tasks" Version="{version}" PrivateAssets="all" /></ItemGroup>
            </Project>
            """);
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);
        var baseImage = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference;
        var output = Path.Combine(project, "image.oci.tar");

        var build = await DotnetCli.RunAsync(project, ["build", "-t:BuildVddkImage", "-nologo", "-v:n", $"-p:VddkArchive={archive}", $"-p:VddkBaseImage={baseImage}", $"-p:VddkImageArchive={output}", "-getProperty:VddkImageDigest"]);
        Assert.True(build.Succeeded, build.ToString());
        Assert.True(File.Exists(output));
        var packagedDigest = build.Output.Trim();

        var sample = new SampleProject(Path.Combine(_work, "sample"));
        var reference = await sample.RunForPropertiesAsync("BuildVddkImage", new Dictionary<string, string> { ["VddkArchive"] = archive, ["VddkBaseImage"] = baseImage }, "VddkImageDigest");
        Assert.Equal(reference["VddkImageDigest"], packagedDigest);
    }
}
