using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// How PublishVddk reaches the cluster's own registry without oc or podman login: from outside, the default route's
/// host and the ingress CA that signs it; in a pod of the cluster, the registry's service
/// (<c>image-registry.openshift-image-registry.svc:5000</c>) and the service CA mounted in the pod (no route, no
/// ingress, no permission to read either); no disabled TLS verification. Credentials come from a 10-minute
/// TokenRequest for a service account of the repository's namespace (VddkServiceAccount, default <c>builder</c>).
/// </summary>
public sealed class ClusterRegistryAccess
{
    public const string DefaultServiceAccount = "builder";

    private ClusterRegistryAccess(string registry, string ns, string serviceAccount, X509Certificate2Collection trusted, ServiceAccountCredentialProvider credentials)
    {
        Registry = registry;
        Namespace = ns;
        ServiceAccount = serviceAccount;
        TrustedCertificates = trusted;
        Credentials = credentials;
    }

    /// <summary>Where to push: the default route's host[:port], or the registry's service in a pod.</summary>
    public string Registry { get; }

    public string Namespace { get; }

    public string ServiceAccount { get; }

    /// <summary>The CA that signs the registry's certificate: the ingress CA for the route, the service CA for the service.</summary>
    public X509Certificate2Collection TrustedCertificates { get; }

    public ServiceAccountCredentialProvider Credentials { get; }

    public string Account => $"system:serviceaccount:{Namespace}:{ServiceAccount}";

    /// <summary>The namespace of an OpenShift repository (<c>namespace/name</c>, as image streams are addressed).</summary>
    public static string NamespaceOf(string repository)
    {
        var parts = repository.Trim().Split('/');
        if (parts.Length != 2 || parts.Any(string.IsNullOrWhiteSpace))
        {
            throw new VddkException(ErrorCodes.PropertyInvalid,
                $"VddkRepository is '{repository}', but the OpenShift registry needs 'namespace/name' (an image stream in a project), e.g. openshift-mtv/vddk.",
                "VddkRepository");
        }
        return parts[0];
    }

    /// <summary>Discovers the route and the CA and requests the first token (so a missing account fails before any build work).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<ClusterRegistryAccess> OpenAsync(ClusterSession session, string repository, string? serviceAccount, CancellationToken cancellationToken)
    {
        var ns = NamespaceOf(repository);
        var account = string.IsNullOrWhiteSpace(serviceAccount) ? DefaultServiceAccount : serviceAccount.Trim();
        string host;
        X509Certificate2Collection trusted;
        string trustSource;
        if (session.InCluster is { } pod && File.Exists(pod.ServiceCaPath))
        {
            // In a pod the service is the registry's own address: the route may not even resolve from inside (no
            // hairpin through the ingress), and reading it or the ingress CA needs permissions a pipeline's account lacks.
            host = RegistryRoute.InternalHost;
            trusted = InClusterServiceAccount.LoadPem(pod.ServiceCaPath);
            trustSource = pod.ServiceCaPath;
        }
        else
        {
            host = await RegistryRoute.DiscoverHostAsync(session, cancellationToken).ConfigureAwait(false);
            var ca = await IngressCaStep.ReadAsync(session, cancellationToken).ConfigureAwait(false);
            (trusted, trustSource) = (ca.Certificates, $"the ingress CA from {ca.Source}");
        }
        var tokens = new ServiceAccountTokenSource(session, ns, account, ServiceAccountTokens.DefaultLifetime);
        await tokens.GetAsync(refresh: false, cancellationToken).ConfigureAwait(false);
        var credentials = new ServiceAccountCredentialProvider(host, tokens, $"system:serviceaccount:{ns}:{account}");
        session.Log.Info(host == RegistryRoute.InternalHost
            ? $"Pushing to the cluster's registry service {host} as system:serviceaccount:{ns}:{account}, trusting the service CA {trustSource}."
            : $"Pushing to the cluster's registry route {host} as system:serviceaccount:{ns}:{account}, trusting {trustSource}.");
        return new ClusterRegistryAccess(host, ns, account, trusted, credentials);
    }

    /// <summary>
    /// The registry's 403 says only "denied"; this names the account and the permission it lacks, and how to grant it.
    /// </summary>
    public VddkException ExplainDenied(VddkException denied, string repository) => new(ErrorCodes.RegistryPushForbidden,
        $"The cluster's registry refused the push of {repository} by {Account}: the service account lacks 'update' on imagestreams/layers " +
        $"(and 'create' on imagestreams for the first push) in namespace \"{Namespace}\", which ClusterRole system:image-builder grants. " +
        $"Grant it with: oc policy add-role-to-user system:image-builder -z {ServiceAccount} -n {Namespace}, or set VddkServiceAccount to an account that has it. " +
        $"(Registry said: {denied.Message})",
        repository, denied);
}
