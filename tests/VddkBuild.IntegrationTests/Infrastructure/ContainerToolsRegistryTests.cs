using System.Globalization;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Infrastructure;

/// <summary>
/// The podman/skopeo wrappers against Debian's docker-registry on loopback: an insecure registry reached through the
/// sandbox's registries.conf, and Basic credentials passed through a per-call auth file (never the command line).
/// </summary>
public sealed class ContainerToolsRegistryTests : IAsyncLifetime
{
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vddkbuild-tools-registry-");
    private readonly ContainerToolsSandbox _sandbox = new();
    private readonly List<BackgroundProcess> _registries = [];

    [SkippableFact]
    public async Task Skopeo_copies_an_index_to_a_plain_http_registry_and_podman_pulls_it_back()
    {
        Skopeo.Require();
        Podman.Require();
        var registry = await StartRegistryAsync(htpasswd: null);
        var skopeo = new Skopeo(_sandbox);
        var podman = new Podman(_sandbox);
        var info = StandInBaseImage.WriteOciLayout(Path.Combine(_work.FullName, "layout"));

        await skopeo.CopyAsync(info.Reference, $"docker://{registry}/stand-in/base:latest", destinationAccess: RegistryAccess.Insecure, all: true);
        using var raw = await skopeo.InspectRawAsync($"docker://{registry}/stand-in/base:latest", RegistryAccess.Insecure);
        _sandbox.AddInsecureRegistry(registry);
        var image = await podman.PullAsync($"docker://{registry}/stand-in/base:latest", RegistryAccess.Insecure, platform: "linux/arm64/v8");
        var run = await podman.RunAsync(image, new ContainerRunOptions { Command = ["cat", StandInBaseImage.PlatformMarkerPath] });

        Assert.Equal(2, raw.RootElement.GetProperty("manifests").GetArrayLength());
        Assert.Equal("linux/arm64/v8", run.EnsureSuccess().StandardOutput.Trim());
    }

    [SkippableFact]
    public async Task Credentials_reach_the_registry_through_an_auth_file_and_are_required()
    {
        Skopeo.Require();
        var htpasswd = Requires.Tool("htpasswd");
        var password = Guid.NewGuid().ToString("N");
        var passwordFile = Path.Combine(_work.FullName, "htpasswd");
        await ProcessRunner.RunCheckedAsync(htpasswd, ["-B", "-i", "-c", passwordFile, "tester"], standardInput: password);
        var registry = await StartRegistryAsync(passwordFile);
        var skopeo = new Skopeo(_sandbox);
        var info = StandInBaseImage.WriteOciLayout(Path.Combine(_work.FullName, "layout"));
        var target = $"docker://{registry}/private/base:1";
        var withCredentials = new RegistryAccess(TlsVerify: false, Credentials: new RegistryCredentials("tester", password));

        var anonymous = await Assert.ThrowsAsync<ProcessFailedException>(() => skopeo.CopyAsync(info.Reference, target, destinationAccess: RegistryAccess.Insecure));
        await skopeo.CopyAsync(info.Reference, target, destinationAccess: withCredentials);
        using var inspected = await skopeo.InspectAsync(target, withCredentials);

        Assert.Contains("authentication required", anonymous.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("amd64", inspected.RootElement.GetProperty("Architecture").GetString());
        Assert.Empty(Directory.GetFiles(_sandbox.Root, "auth-*.json"));
    }

    private async Task<string> StartRegistryAsync(string? htpasswd)
    {
        var registryBinary = Requires.Tool("docker-registry");
        var port = FreePort.Next();
        var config = Path.Combine(_work.FullName, $"registry-{port}.yml");
        var auth = htpasswd is null ? string.Empty : $"auth:\n  htpasswd:\n    realm: vddkbuild-tests\n    path: {htpasswd}\n";
        File.WriteAllText(config, $"""
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {Path.Combine(_work.FullName, $"registry-{port}")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}
            {auth}
            """);
        var registry = BackgroundProcess.Start(registryBinary, ["serve", config]);
        _registries.Add(registry);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await registry.WaitUntilReadyAsync(async ct =>
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/v2/"), ct);
            return (int)response.StatusCode is 200 or 401;
        }, TimeSpan.FromSeconds(30));
        return $"127.0.0.1:{port}";
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var registry in _registries)
        {
            await registry.DisposeAsync();
        }
        _sandbox.Dispose();
        _work.Delete(recursive: true);
    }
}
