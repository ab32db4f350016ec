using k8s;
using k8s.Exceptions;

namespace VddkBuild.Cluster;

/// <summary>
/// An authenticated client of one cluster's API server. Configuration follows kubectl: an explicit kubeconfig file
/// (and context) when given, else <c>KUBECONFIG</c>, else <c>~/.kube/config</c>, else the in-cluster service account.
/// Unlike <c>BuildDefaultConfig</c> it never falls back to http://localhost:8080: no cluster configured is an error.
/// </summary>
public sealed class ClusterConnection : IDisposable
{
    private ClusterConnection(Kubernetes api, KubernetesClientConfiguration configuration)
    {
        Api = api;
        Server = configuration.Host;
        Namespace = configuration.Namespace;
    }

    public IKubernetes Api { get; }

    /// <summary>The API server URL, for messages.</summary>
    public string Server { get; }

    /// <summary>The namespace of the kubeconfig context (or the pod's namespace in-cluster), if any.</summary>
    public string? Namespace { get; }

    /// <param name="kubeconfigPath">VddkKubeconfig; null for the usual search.</param>
    /// <param name="context">VddkKubeContext; null for the current context.</param>
    public static ClusterConnection Open(string? kubeconfigPath = null, string? context = null)
    {
        var path = kubeconfigPath ?? FindKubeconfig();
        KubernetesClientConfiguration configuration;
        try
        {
            if (path is not null)
            {
                if (!File.Exists(path))
                {
                    throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                        $"The kubeconfig file '{path}' does not exist. Set VddkKubeconfig to an existing file (or log in with 'oc login').", path);
                }
                configuration = KubernetesClientConfiguration.BuildConfigFromConfigFile(path, context);
            }
            else if (context is null && KubernetesClientConfiguration.IsInCluster())
            {
                configuration = KubernetesClientConfiguration.InClusterConfig();
            }
            else
            {
                throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                    "No cluster is configured: no VddkKubeconfig, no KUBECONFIG, no ~/.kube/config and not running in a pod. " +
                    "Log in with 'oc login' or set VddkKubeconfig.");
            }
        }
        catch (KubeConfigException ex)
        {
            throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                $"The kubeconfig '{path ?? "in-cluster"}' cannot be used{(context is null ? "" : $" with context '{context}'")}: {ex.Message}. " +
                "Check VddkKubeconfig and VddkKubeContext.", path, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or YamlDotNet.Core.YamlException)
        {
            throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                $"The kubeconfig '{path}' cannot be read: {ex.Message}. Check VddkKubeconfig.", path, ex);
        }
        return FromConfiguration(configuration);
    }

    public static ClusterConnection FromConfiguration(KubernetesClientConfiguration configuration) =>
        new(new Kubernetes(configuration), configuration);

    /// <summary>The first existing file of KUBECONFIG (a path list, as kubectl reads it), else ~/.kube/config.</summary>
    private static string? FindKubeconfig()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("KUBECONFIG");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            var candidates = fromEnvironment.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
            return candidates.FirstOrDefault(File.Exists) ?? candidates[0];
        }
        var home = KubernetesClientConfiguration.KubeConfigDefaultLocation;
        return File.Exists(home) ? home : null;
    }

    public void Dispose() => (Api as IDisposable)?.Dispose();
}
