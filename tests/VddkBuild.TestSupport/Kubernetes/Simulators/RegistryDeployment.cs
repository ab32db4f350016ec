using System.Globalization;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// The image-registry deployment: one real docker-registry (distribution 2.8, the upstream of OpenShift's registry)
/// configured only through the environment the operator renders, on a free 127.0.0.1 port, stopped by its PID.
/// </summary>
public sealed class RegistryDeployment : IAsyncDisposable
{
    private readonly BackgroundProcess _process;
    private readonly string _directory;

    private RegistryDeployment(BackgroundProcess process, string directory, int port, RegistryDeploymentSettings settings)
    {
        _process = process;
        _directory = directory;
        Port = port;
        Settings = settings;
    }

    public int Port { get; }

    public RegistryDeploymentSettings Settings { get; }

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    public string RecentOutput => _process.RecentOutput;

    public static async Task<RegistryDeployment> StartAsync(RegistryDeploymentSettings settings, CancellationToken cancellationToken)
    {
        var executable = Requires.Tool("docker-registry");
        var directory = Directory.CreateTempSubdirectory("vddk-sim-registry-").FullName;
        var caPath = Path.Combine(directory, "trusted-ca.crt");
        await File.WriteAllTextAsync(caPath, settings.CaBundlePem, cancellationToken);
        var port = FreePort.Next();
        var config = Path.Combine(directory, "config.yml");
        // Storage comes from the environment only (REGISTRY_STORAGE=s3 ...), as in the operator's deployment.
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: true
            http:
              addr: 127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}
              secret: {Guid.NewGuid():N}

            """, cancellationToken);
        var environment = ChildEnvironment.Minimal().With("HOME", directory).With(settings.Environment(caPath));
        var process = BackgroundProcess.Start(executable, ["serve", config], environment, directory);
        var deployment = new RegistryDeployment(process, directory, port, settings);
        try
        {
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
            await process.WaitUntilReadyAsync(async ct =>
            {
                using var response = await client.GetAsync(new Uri(deployment.BaseUri, "/v2/"), ct);
                return true;
            }, TimeSpan.FromSeconds(20), cancellationToken);
        }
        catch
        {
            await deployment.DisposeAsync();
            throw;
        }
        return deployment;
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
