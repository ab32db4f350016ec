namespace VddkBuild.Tasks;

/// <summary>Properties every cluster task shares: which cluster (kubeconfig, context) and how often waits poll.</summary>
public abstract class ClusterTask : VddkTask
{
    /// <summary>VddkKubeconfig: a kubeconfig file; empty for KUBECONFIG, ~/.kube/config, or the pod's service account.</summary>
    public string? Kubeconfig { get; set; }

    /// <summary>VddkKubeContext: a context of the kubeconfig; empty for its current context.</summary>
    public string? KubeContext { get; set; }

    /// <summary>VddkClusterPollInterval: how often waits re-read the cluster (default 2 s).</summary>
    public string? PollInterval { get; set; }
}
