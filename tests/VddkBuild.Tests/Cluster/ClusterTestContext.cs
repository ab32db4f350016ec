using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using VddkBuild.Cluster;
using VddkBuild.Diagnostics;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

/// <summary>A loopback cluster with the namespaces an OpenShift cluster has, and sessions against it that record their log.</summary>
public sealed class ClusterTestContext : IAsyncLifetime
{
    public static readonly string[] Namespaces =
    [
        "openshift-image-registry", "openshift-storage", "openshift-config", "openshift-config-managed", "openshift-ingress",
        "openshift-ingress-operator", "openshift-mtv",
    ];

    private readonly List<Kubernetes> _clients = [];

    public LoopbackKubeApiServer Server { get; private set; } = null!;

    public KubeObjectStore Store => Server.Store;

    public RecordingLog Log { get; } = new();

    public async Task InitializeAsync()
    {
        Server = await LoopbackKubeApiServer.StartAsync();
        foreach (var ns in Namespaces)
        {
            Store.Create(KubeResources.Namespaces, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } });
        }
    }

    public ClusterSession Session(bool dryRun = false, string? kubeconfig = null, TimeSpan? pollInterval = null)
    {
        var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig ?? Server.KubeconfigPath));
        _clients.Add(client);
        return new ClusterSession(client, Server.BaseUri.ToString(), Log, dryRun) { PollInterval = pollInterval ?? TimeSpan.FromMilliseconds(20) };
    }

    /// <summary>A session of a second user, "developer", for 403 tests.</summary>
    public ClusterSession DeveloperSession()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vddk-kc-{Guid.NewGuid():N}");
        Server.WriteKubeconfig(path, Server.AddUser("developer"));
        try
        {
            return Session(kubeconfig: path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    public JsonObject Seed(KubeResource resource, string? ns, string name, JsonObject? content = null)
    {
        var body = content ?? new JsonObject();
        var metadata = body["metadata"] as JsonObject ?? new JsonObject();
        metadata["name"] = name;
        body["metadata"] = metadata;
        return Store.Create(resource, ns, body, keepStatus: true);
    }

    public void SeedSecret(string ns, string name, params (string Key, string Value)[] data)
    {
        var values = new JsonObject();
        foreach (var (key, value) in data)
        {
            values[key] = Convert.ToBase64String(Encoding.UTF8.GetBytes(value));
        }
        Seed(KubeResources.Secrets, ns, name, new JsonObject { ["data"] = values });
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }
        await Server.DisposeAsync();
    }
}

public sealed class RecordingLog : IBuildLog
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public ConcurrentQueue<(string Code, string Message)> Warnings { get; } = new();

    public string All => string.Join("\n", Lines) + "\n" + string.Join("\n", Warnings.Select(w => $"{w.Code}: {w.Message}"));

    public void Info(string message) => Lines.Enqueue(message);

    public void Detail(string message) => Lines.Enqueue(message);

    public void Warn(string code, string message) => Warnings.Enqueue((code, message));
}
