using System.Security.Cryptography.X509Certificates;
using k8s;
using k8s.Authentication;

namespace VddkBuild.Cluster;

/// <summary>
/// The service account of the pod this build runs in (a Tekton or Jenkins agent pod): KUBERNETES_SERVICE_HOST/PORT and
/// the files the kubelet mounts in <see cref="DefaultDirectory"/> (token, ca.crt, namespace and, on OpenShift,
/// service-ca.crt: the CA of the service serving certificates, which signs the image registry's service certificate).
/// </summary>
public sealed class InClusterServiceAccount
{
    public const string DefaultDirectory = "/var/run/secrets/kubernetes.io/serviceaccount";

    private InClusterServiceAccount(string directory, string host, string port)
    {
        Directory = directory;
        Host = host;
        Port = port;
    }

    public string Directory { get; }

    public string Host { get; }

    public string Port { get; }

    public string TokenPath => Path.Combine(Directory, "token");

    public string ApiCaPath => Path.Combine(Directory, "ca.crt");

    /// <summary>OpenShift's service CA bundle: trusted for <c>image-registry.openshift-image-registry.svc:5000</c>.</summary>
    public string ServiceCaPath => Path.Combine(Directory, "service-ca.crt");

    /// <summary>
    /// The pod's service account, or null when this is not a pod: both variables set and token and ca.crt present
    /// (the test of client-go's InClusterConfig).
    /// </summary>
    /// <param name="directory">Tests point this at a folder of their own.</param>
    public static InClusterServiceAccount? Detect(Func<string, string?>? getEnvironmentVariable = null, string directory = DefaultDirectory)
    {
        var get = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        var host = get("KUBERNETES_SERVICE_HOST");
        var port = get("KUBERNETES_SERVICE_PORT");
        if (string.IsNullOrWhiteSpace(host) || string.IsNullOrWhiteSpace(port))
        {
            return null;
        }
        var account = new InClusterServiceAccount(directory, host.Trim(), port.Trim());
        return File.Exists(account.TokenPath) && File.Exists(account.ApiCaPath) ? account : null;
    }

    /// <summary>
    /// The API server at https://HOST:PORT (an IPv6 host bracketed) trusting ca.crt, authenticated by the token file,
    /// re-read as the kubelet rotates it (bound tokens live about an hour).
    /// </summary>
    public KubernetesClientConfiguration Configuration()
    {
        if (!int.TryParse(Port, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                $"KUBERNETES_SERVICE_PORT is '{Port}', which is not a port; the pod's environment is broken (or set by hand).", "KUBERNETES_SERVICE_PORT");
        }
        var configuration = new KubernetesClientConfiguration
        {
            Host = new UriBuilder("https", Host, port).Uri.ToString(),
            TokenProvider = new TokenFileAuth(TokenPath),
            SslCaCerts = LoadPem(ApiCaPath),
        };
        var namespacePath = Path.Combine(Directory, "namespace");
        if (File.Exists(namespacePath))
        {
            configuration.Namespace = File.ReadAllText(namespacePath).Trim();
        }
        return configuration;
    }

    public static X509Certificate2Collection LoadPem(string path)
    {
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPemFile(path);
        return certificates;
    }
}
