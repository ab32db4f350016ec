using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// PublishVddk against a TLS registry whose certificate comes from a private CA: verification is on unless it is
/// turned off explicitly, and turning it off warns, naming the host, on every run.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class TlsVerificationTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-tls-").FullName;
    private TestCertificateAuthority? _ca;
    private DockerRegistryProcess? _registry;
    private Dictionary<string, string> _properties = [];

    public async Task InitializeAsync()
    {
        Requires.Tool("docker-registry");
        _ca = TestCertificateAuthority.Create(Path.Combine(_work, "ca"));
        _registry = await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Tls = _ca });
        _properties = new()
        {
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
            ["VddkRegistry"] = _registry.Authority,
        };
    }

    public async Task DisposeAsync()
    {
        if (_registry is not null) { await _registry.DisposeAsync(); }
        _ca?.Dispose();
        Directory.Delete(_work, recursive: true);
    }

    private async Task<BuildRun> PublishAsync(Dictionary<string, string>? extra = null, Dictionary<string, string?>? environment = null)
    {
        var sample = new SampleBuild(Path.Combine(_work, "build"));
        foreach (var (name, value) in environment ?? [])
        {
            sample.Environment[name] = value;
        }
        var properties = new Dictionary<string, string>(_properties);
        foreach (var (key, value) in extra ?? [])
        {
            properties[key] = value;
        }
        var run = await sample.RunAsync("PublishVddk", properties);
        output.WriteLine(run.ToString());
        return run;
    }

    private string Warning => $"warning VDDK3901: Registry {_registry!.Authority} is marked insecure";

    [SkippableFact]
    public async Task A_private_CA_registry_without_the_CA_bundle_fails_with_VDDK3003_naming_the_host_and_the_fix()
    {
        var run = await PublishAsync();

        Assert.False(run.Succeeded);
        Assert.Equal(["VDDK3003"], run.ErrorCodes);
        Assert.Contains(_registry!.Authority, run.Output);
        Assert.Contains("VddkRegistryCaBundle", run.Output);
        Assert.Null(StoredTag());
    }

    [SkippableFact]
    public async Task With_the_CA_bundle_the_push_is_verified_and_gives_no_warning()
    {
        var run = await PublishAsync(new() { ["VddkRegistryCaBundle"] = _ca!.CaCertificatePath });

        Assert.True(run.Succeeded, run.ToString());
        Assert.DoesNotContain("VDDK3901", run.Output);
        Assert.Equal(run.Digest, StoredTag());
    }

    [SkippableFact]
    public async Task VddkRegistryInsecure_warns_naming_the_host_on_every_run()
    {
        var first = await PublishAsync(new() { ["VddkRegistryInsecure"] = "true" });
        var second = await PublishAsync(new() { ["VddkRegistryInsecure"] = "true" });

        Assert.True(first.Succeeded, first.ToString());
        Assert.True(second.Succeeded, second.ToString());
        Assert.Contains(Warning, first.Output);
        Assert.Contains(Warning, second.Output);
    }

    [SkippableFact]
    public async Task The_SDKs_insecure_registries_variable_also_warns_naming_the_host()
    {
        var run = await PublishAsync(environment: new() { ["DOTNET_CONTAINER_INSECURE_REGISTRIES"] = "other.example:5000;" + _registry!.Authority });

        Assert.True(run.Succeeded, run.ToString());
        Assert.Contains(Warning, run.Output);
    }

    private string? StoredTag() =>
        TestSupport.Faults.StoredImageCheck.Inspect(_registry!.StorageDirectory, "openshift-mtv/vddk", "8.0.1").ManifestDigest;
}
