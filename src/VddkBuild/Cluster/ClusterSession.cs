using k8s;
using VddkBuild.Diagnostics;

namespace VddkBuild.Cluster;

/// <summary>
/// What every cluster step works with: the API client, the log, whether this is a dry run, the record of changes
/// (applied, or planned in a dry run), and the clock and poll interval of waits (tests shorten them).
/// </summary>
public sealed class ClusterSession
{
    public ClusterSession(ClusterConnection connection, IBuildLog log, bool dryRun = false, TimeProvider? clock = null)
        : this(connection.Api, connection.Server, log, dryRun, clock)
    {
        InCluster = connection.InCluster;
        connection.ShowWarningsIn(log);
    }

    public ClusterSession(IKubernetes api, string server, IBuildLog log, bool dryRun = false, TimeProvider? clock = null)
    {
        Api = api;
        Server = server;
        Log = log;
        DryRun = dryRun;
        Clock = clock ?? TimeProvider.System;
        Changes = new ClusterPlan(log, dryRun);
    }

    public IKubernetes Api { get; }

    public string Server { get; }

    /// <summary>The pod's service account when the connection is the in-cluster one (no kubeconfig).</summary>
    public InClusterServiceAccount? InCluster { get; init; }

    public IBuildLog Log { get; }

    /// <summary>Print every change (object, field, old -> new) and write nothing.</summary>
    public bool DryRun { get; }

    /// <summary>Every change the steps made (or, in a dry run, would make).</summary>
    public ClusterPlan Changes { get; }

    public TimeProvider Clock { get; }

    /// <summary>How often waits re-read the cluster.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);

    internal Task DelayAsync(CancellationToken cancellationToken) => Task.Delay(PollInterval, Clock, cancellationToken);
}
