using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>
/// Mistakes a user makes in the properties of samples/PublishVddk: each is a coded error that says what to change,
/// never VDDK9999 (a bug report) and never a secret echoed back.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class PropertyMistakeTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-mistake-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private Dictionary<string, string> Inputs() => new()
    {
        ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
        ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
    };

    [Theory]
    [InlineData("VddkMaxEntrySize", "99999999999TiB")]
    [InlineData("VddkMaxTotalSize", "9223372036854775808")]
    [InlineData("VddkMaxTotalSize", "99999999999999999999999999999999")]
    public async Task A_size_beyond_a_byte_count_is_VDDK5002_naming_the_property(string property, string value)
    {
        var properties = Inputs();
        properties[property] = value;

        var result = await new SampleProject(_work).RunAsync("BuildVddkImage", properties);

        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains($"error VDDK5002: {property} is '{value}'", result.Output);
        Assert.DoesNotContain("VDDK9999", result.Output);
    }

    [Theory]
    [InlineData("v2s2")]
    [InlineData("schema2")]
    public async Task An_unknown_VddkImageFormat_is_VDDK5002_naming_the_formats(string value)
    {
        var properties = Inputs();
        properties["VddkImageFormat"] = value;

        var result = await new SampleProject(_work).RunAsync("BuildVddkImage", properties);

        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains($"error VDDK5002: VddkImageFormat is '{value}', but it must be OCI", result.Output);
        Assert.DoesNotContain("VDDK9999", result.Output);
    }

    [Theory]
    [InlineData("root:x y")]
    [InlineData("1001:0:0")]
    [InlineData("-1")]
    public async Task A_user_no_runtime_can_find_is_VDDK5002(string user)
    {
        var properties = Inputs();
        properties["VddkUser"] = user;
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync("BuildVddkImage", properties);

        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains($"error VDDK5002: VddkUser is '{user}'", result.Output);
    }

    [Theory]
    [InlineData("builder", true)]
    [InlineData("", false)]
    public async Task VddkServiceAccount_with_an_explicit_VddkRegistry_is_warning_VDDK4906_as_it_is_not_used(string serviceAccount, bool warned)
    {
        var properties = Inputs();
        properties["VddkRegistry"] = "127.0.0.1:1";
        properties["VddkServiceAccount"] = serviceAccount;
        properties["VddkDryRun"] = "true";

        var result = await new SampleProject(_work).RunAsync("PublishVddk", properties);

        Assert.True(result.Succeeded, result.ToString());
        Assert.Equal(warned, result.Output.Contains("warning VDDK4906: VddkServiceAccount ('builder') is not used: VddkRegistry is set", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_folder_given_as_the_archive_is_VDDK1001_saying_it_is_a_folder()
    {
        var properties = Inputs();
        properties["VddkArchive"] = Path.GetDirectoryName(properties["VddkArchive"])!;

        var result = await new SampleProject(_work).RunAsync("BuildVddkImage", properties);

        Assert.False(result.Succeeded, result.ToString());
        var errors = result.Output.Split('\n').Where(l => l.Contains("error VDDK1001", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(errors);
        Assert.All(errors, e => Assert.Contains($"'{properties["VddkArchive"]}' is a directory", e));
        Assert.All(errors, e => Assert.DoesNotContain("does not exist", e));
    }

    [Fact]
    public async Task Relative_paths_are_taken_from_the_project_folder_and_an_archive_else_from_where_the_build_started()
    {
        var properties = Inputs();
        var projectFolder = Path.GetDirectoryName(new SampleProject(_work).ProjectPath)!;
        // The base relative to the project (it was taken from the package's build/ folder, where the .targets are);
        // the archive relative to the directory dotnet build runs in (the repository's root), as a CI script gives it.
        properties["VddkBaseImage"] = "oci:" + Path.GetRelativePath(projectFolder, properties["VddkBaseImage"]["oci:".Length..]);
        properties["VddkArchive"] = Path.GetRelativePath(DotnetCli.RepoRoot, properties["VddkArchive"]);

        var result = await new SampleProject(_work).RunAsync("BuildVddkImage", properties);

        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains($"VddkArchive '{properties["VddkArchive"]}' is not in the project's folder", result.Output);
    }

    [Fact]
    public async Task A_home_relative_archive_is_found_under_HOME_and_a_missing_one_says_where_relative_paths_are_taken_from()
    {
        var properties = Inputs();
        properties["VddkArchive"] = "~/" + Path.GetRelativePath(_work, properties["VddkArchive"]);
        var home = new Dictionary<string, string?> { ["HOME"] = _work };

        var found = await new SampleProject(_work) { Environment = home }.RunAsync("BuildVddkImage", properties);
        properties["VddkArchive"] = "downloads/VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz";
        var missing = await new SampleProject(_work) { Environment = home }.RunAsync("BuildVddkImage", properties);

        Assert.True(found.Succeeded, found.ToString());
        Assert.False(missing.Succeeded, missing.ToString());
        Assert.Contains("error VDDK1001", missing.Output);
        Assert.Contains("a relative path is taken from the project's folder, or else from the directory the build was started from", missing.Output);
    }

    [Fact]
    public async Task An_intermediate_folder_that_cannot_be_created_is_VDDK2007_naming_it()
    {
        var properties = Inputs();
        var file = Path.Combine(_work, "a-file");
        File.WriteAllText(file, "not a folder");
        var sample = new SampleProject(_work);

        // VddkIntermediateDirectory under a regular file: no folder can be made there (ENOTDIR), as on a read-only mount.
        var result = await sample.RunAsync("BuildVddkImage", properties, $"-p:VddkIntermediateDirectory={file}/obj/");

        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains("error VDDK2007", result.Output);
        Assert.Contains(Path.Combine(file, "obj"), result.Output);
        Assert.DoesNotContain("VDDK9999", result.Output);
        Assert.False(Directory.Exists(sample.OutputDirectory) && Directory.EnumerateFileSystemEntries(sample.OutputDirectory).Any());
    }

    [Theory]
    [InlineData("PublishVddk", "VddkRegistryPassword")]
    [InlineData("BuildVddkImage", "VddkRegistryToken")]
    [InlineData("ExtractVddk", "VddkPassword")]
    [InlineData("PrepareVddkRegistry", "VddkToken")]
    public async Task A_password_given_as_a_property_is_refused_with_VDDK5003_before_anything_runs(string target, string property)
    {
        const string secret = "s3cr3t-Pr0perty-Valu3";
        var properties = Inputs();
        properties[property] = secret;
        properties["VddkRegistry"] = "127.0.0.1:1";
        properties["VddkUseCluster"] = "false";
        var sample = new SampleProject(_work);

        var result = await sample.RunAsync(target, properties);

        Assert.False(result.Succeeded, result.ToString());
        Assert.Contains($"error VDDK5003: {property} is set", result.Output);
        Assert.Contains("VDDK_REGISTRY_PASSWORD", result.Output);
        Assert.DoesNotContain(secret, result.Output);
        // Refused before any task: no connection attempt, no layer, no output.
        Assert.DoesNotContain("VDDK3013", result.Output);
        Assert.DoesNotContain("VDDK4004", result.Output);
        Assert.False(Directory.Exists(sample.IntermediateDirectory));
        Assert.False(Directory.Exists(sample.OutputDirectory));
    }
}
