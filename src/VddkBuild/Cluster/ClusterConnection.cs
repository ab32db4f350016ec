using k8s;
using k8s.Exceptions;
using VddkBuild.Diagnostics;
using VddkBuild.Registry;

namespace VddkBuild.Cluster;

/// <summary>
/// An authenticated client of one cluster's API server. Configuration follows kubectl: an explicit kubeconfig file
/// (and context) when given, else <c>KUBECONFIG</c>, else <c>~/.kube/config</c>, else the in-cluster service account.
/// Unlike <c>BuildDefaultConfig</c> it never falls back to http://localhost:8080: no cluster configured is an error.
/// </summary>
public sealed class ClusterConnection : IDisposable
{
    private readonly ApiServerWarnings _warnings;

    private ClusterConnection(KubernetesClientConfiguration configuration, InClusterServiceAccount? inCluster)
    {
        _warnings = new ApiServerWarnings(configuration.Host.TrimEnd('/'));
        // As client-go: a throttled request is sent again after the server's Retry-After; its warnings are shown.
        Api = new Kubernetes(configuration, _warnings, new RetryAfterHandler(TimeProvider.System));
        Server = configuration.Host;
        Namespace = configuration.Namespace;
        InCluster = inCluster;
    }

    public IKubernetes Api { get; }

    /// <summary>The API server URL, for messages.</summary>
    public string Server { get; }

    /// <summary>The namespace of the kubeconfig context (or the pod's namespace in-cluster), if any.</summary>
    public string? Namespace { get; }

    /// <summary>The pod's service account when no kubeconfig was found and this runs in a pod.</summary>
    public InClusterServiceAccount? InCluster { get; }

    /// <param name="kubeconfigPath">VddkKubeconfig; null for the usual search.</param>
    /// <param name="context">VddkKubeContext; null for the current context.</param>
    public static ClusterConnection Open(string? kubeconfigPath = null, string? context = null) =>
        Open(kubeconfigPath, context, null, InClusterServiceAccount.DefaultDirectory);

    /// <param name="getEnvironmentVariable">Tests replace the environment...</param>
    /// <param name="serviceAccountDirectory">...and the pod's service account folder.</param>
    internal static ClusterConnection Open(string? kubeconfigPath, string? context, Func<string, string?>? getEnvironmentVariable, string serviceAccountDirectory)
    {
        var paths = kubeconfigPath is not null ? [kubeconfigPath] : FindKubeconfigs(getEnvironmentVariable);
        InClusterServiceAccount? inCluster = null;
        var described = paths.Count == 0 ? "in-cluster" : string.Join(Path.PathSeparator, paths);
        KubernetesClientConfiguration configuration;
        try
        {
            if (paths.Count > 0)
            {
                if (paths.FirstOrDefault(p => !File.Exists(p)) is { } missing)
                {
                    throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                        $"The kubeconfig file '{missing}' does not exist. Set VddkKubeconfig to an existing file (or log in with 'oc login').", missing);
                }
                configuration = KubeconfigFiles.Load(paths, context);
            }
            else if (context is null && InClusterServiceAccount.Detect(getEnvironmentVariable, serviceAccountDirectory) is { } pod)
            {
                inCluster = pod;
                configuration = pod.Configuration();
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
                $"The kubeconfig '{described}' cannot be used{(context is null ? "" : $" with context '{context}'")}: {KubeconfigFiles.Describe(ex)}. " +
                "Check VddkKubeconfig and VddkKubeContext.", described, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or YamlDotNet.Core.YamlException
            or System.Security.Cryptography.CryptographicException)
        {
            throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                $"The kubeconfig '{described}' cannot be read: {FirstLine(ex.Message)}. Check VddkKubeconfig.", described, ex);
        }
        UseEnvironmentProxy(configuration, getEnvironmentVariable);
        return new ClusterConnection(configuration, inCluster);
    }

    /// <summary>
    /// As client-go: HTTPS_PROXY/NO_PROXY as Go reads them, unless the kubeconfig's proxy-url already decided
    /// (KubernetesClient would otherwise apply .NET's NO_PROXY reading, which knows no CIDR ranges).
    /// </summary>
    internal static void UseEnvironmentProxy(KubernetesClientConfiguration configuration, Func<string, string?>? getEnvironmentVariable = null)
    {
        if (configuration.FirstMessageHandlerSetup is not null)
        {
            return;
        }
        var proxy = EnvironmentProxy.FromEnvironment(getEnvironmentVariable);
        configuration.FirstMessageHandlerSetup = handler =>
        {
            handler.Proxy = proxy;
            handler.UseProxy = proxy is not null;
        };
    }

    public static ClusterConnection FromConfiguration(KubernetesClientConfiguration configuration) =>
        new(configuration, null);

    /// <summary>Sends the API server's warnings to the build's log from now on.</summary>
    internal void ShowWarningsIn(IBuildLog log) => _warnings.Log = log;

    /// <summary>
    /// The existing files of KUBECONFIG (a path list, merged as kubectl merges it; files that do not exist are skipped,
    /// and when none exists the first is reported), else ~/.kube/config; empty when neither.
    /// </summary>
    public static IReadOnlyList<string> FindKubeconfigs(Func<string, string?>? getEnvironmentVariable = null)
    {
        var get = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        var fromEnvironment = get("KUBECONFIG");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            var candidates = fromEnvironment.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Distinct(StringComparer.Ordinal).ToList();
            var existing = candidates.Where(File.Exists).ToList();
            return existing.Count > 0 ? existing : [candidates[0]];
        }
        var home = get("HOME") is { Length: > 0 } directory ? Path.Combine(directory, ".kube", "config") : KubernetesClientConfiguration.KubeConfigDefaultLocation;
        return File.Exists(home) ? [home] : [];
    }

    /// <summary>KubernetesClient appends whole exception dumps (stack traces) to some messages.</summary>
    private static string FirstLine(string message) => message.Split('\n', 2)[0].TrimEnd('\r', '.');

    public void Dispose() => (Api as IDisposable)?.Dispose();
}
