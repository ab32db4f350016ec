using Microsoft.Build.Framework;
using VddkBuild.Cluster;
using VddkBuild.Diagnostics;

namespace VddkBuild.Tasks;

/// <summary>Decides whether PublishVddk works against a cluster (VddkUseCluster auto|true|false); connects to nothing.</summary>
public sealed class ClusterDetect : VddkTask
{
    public string? UseCluster { get; set; }
    public string? Kubeconfig { get; set; }

    [Output] public bool ClusterFound { get; private set; }

    protected override Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        var (use, reason) = ClusterDetection.Decide(UseCluster, Kubeconfig);
        ClusterFound = use;
        log.Info($"VddkBuild: {(use ? "using" : "not using")} a cluster ({reason}).");
        return Task.CompletedTask;
    }
}
