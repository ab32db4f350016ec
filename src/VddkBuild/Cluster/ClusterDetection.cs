using k8s;

namespace VddkBuild.Cluster;

/// <summary>
/// Whether a cluster is configured for this build (VddkUseCluster=auto): VddkKubeconfig set, KUBECONFIG naming an
/// existing file, ~/.kube/config present, or running in a pod with a service account. Only looks; connects to nothing.
/// </summary>
public static class ClusterDetection
{
    /// <param name="useCluster">VddkUseCluster: auto (default), true or false.</param>
    /// <returns>True to use the cluster; the reason is for the build log.</returns>
    public static (bool Use, string Reason) Decide(string? useCluster, string? kubeconfig, Func<string, string?>? getEnvironmentVariable = null)
    {
        var mode = string.IsNullOrWhiteSpace(useCluster) ? "auto" : useCluster.Trim().ToLowerInvariant();
        switch (mode)
        {
            case "true" or "yes" or "1" or "on":
                return (true, "VddkUseCluster is true");
            case "false" or "no" or "0" or "off":
                return (false, "VddkUseCluster is false");
            case "auto":
                break;
            default:
                throw new VddkException(ErrorCodes.PropertyInvalid, $"VddkUseCluster is '{useCluster}', but it must be auto, true or false.", "VddkUseCluster");
        }
        var get = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        if (!string.IsNullOrWhiteSpace(kubeconfig))
        {
            return (true, $"VddkKubeconfig is set ({kubeconfig})");
        }
        var fromEnvironment = get("KUBECONFIG");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            var existing = fromEnvironment.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(File.Exists);
            return existing is null ? (false, "KUBECONFIG names no existing file") : (true, $"KUBECONFIG is {existing}");
        }
        var home = get("HOME");
        var defaultPath = string.IsNullOrEmpty(home) ? KubernetesClientConfiguration.KubeConfigDefaultLocation : Path.Combine(home, ".kube", "config");
        if (File.Exists(defaultPath))
        {
            return (true, $"{defaultPath} exists");
        }
        if (InClusterServiceAccount.Detect(get) is not null)
        {
            return (true, "running in a pod with a service account");
        }
        return (false, "no kubeconfig and not in a pod");
    }
}
