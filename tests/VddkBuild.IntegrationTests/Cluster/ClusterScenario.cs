using VddkBuild.Cluster;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes.Simulators;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>
/// One test's simulated OpenShift on the shared Ceph RGW, a session on it through its kubeconfig (as a user would
/// connect), a bucket name of its own (bucket names are global in RGW, as in NooBaa) and quick polling.
/// </summary>
internal sealed class ClusterScenario : IAsyncDisposable
{
    private readonly List<ClusterConnection> _connections = [];

    private readonly ITestOutputHelper _output;

    private ClusterScenario(SimulatedOpenShift cluster, RecordingBuildLog log, string bucketName, ITestOutputHelper output)
    {
        _output = output;
        Cluster = cluster;
        Log = log;
        BucketName = bucketName;
    }

    public SimulatedOpenShift Cluster { get; }

    public RecordingBuildLog Log { get; }

    public string BucketName { get; }

    public static async Task<ClusterScenario> StartAsync(CephRgw ceph, ITestOutputHelper output, SimulatedOpenShiftOptions? options = null)
    {
        ceph.Require();
        var cluster = await SimulatedOpenShift.StartAsync(ceph, options);
        return new ClusterScenario(cluster, new RecordingBuildLog(output.WriteLine), CephRgw.UniqueBucketName("registry"), output);
    }

    public ClusterSession Session(bool dryRun = false, TimeSpan? pollInterval = null)
    {
        var connection = ClusterConnection.Open(Cluster.KubeconfigPath);
        _connections.Add(connection);
        return new ClusterSession(connection, Log, dryRun) { PollInterval = pollInterval ?? TimeSpan.FromMilliseconds(200) };
    }

    public RegistryPreparationOptions Options(RegistryPreparationSteps steps = RegistryPreparationSteps.All, TimeSpan? rolloutTimeout = null, TimeSpan? boundTimeout = null) => new()
    {
        Steps = steps,
        Bucket = new BucketClaimOptions { BucketName = BucketName, BoundTimeout = boundTimeout ?? TimeSpan.FromSeconds(60) },
        RolloutTimeout = rolloutTimeout ?? TimeSpan.FromSeconds(60),
    };

    public async Task<RegistryPreparationResult> PrepareAsync(RegistryPreparationOptions? options = null, bool dryRun = false)
    {
        var result = await RegistryPreparation.RunAsync(Session(dryRun), options ?? Options(), CancellationToken.None);
        await Cluster.Api.WaitForControllersAsync();
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            connection.Dispose();
        }
        if (Cluster.RegistryOperator.Deployment is { } registry)
        {
            // The registry's own log explains 5xx answers in a failed test.
            _output.WriteLine("docker-registry (last lines):\n" + string.Join('\n', registry.RecentOutput.Split('\n').TakeLast(30)));
        }
        var errors = Cluster.Api.ControllerErrors;
        await Cluster.DisposeAsync();
        Assert.True(errors.Count == 0, "simulated controllers failed:\n" + string.Join("\n", errors));
    }
}
