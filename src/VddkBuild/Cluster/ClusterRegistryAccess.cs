using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// How PublishVddk reaches the cluster's own registry without oc or podman login: from outside, the default route's
/// host and the ingress CA that signs it; in a pod of the cluster, the registry's service
/// (<c>image-registry.openshift-image-registry.svc:5000</c>) and the service CA mounted in the pod (no route, no
/// ingress, no permission to read either); no disabled TLS verification. Credentials come from a 10-minute
/// TokenRequest for a service account of the repository's namespace (VddkServiceAccount, default <c>builder</c>); in a
/// pod without VddkServiceAccount, from the pod's own service account (its token file, as the pod reaches the API
/// server), so a pipeline pushes as its own account and needs no right to mint tokens for another.
/// </summary>
public sealed class ClusterRegistryAccess
{
    public const string DefaultServiceAccount = "builder";

    private ClusterRegistryAccess(string registry, string ns, string accountNamespace, string serviceAccount, X509Certificate2Collection trusted, IRefreshableCredentialProvider credentials)
    {
        Registry = registry;
        Namespace = ns;
        AccountNamespace = accountNamespace;
        ServiceAccount = serviceAccount;
        TrustedCertificates = trusted;
        Credentials = credentials;
    }

    /// <summary>Where to push: the default route's host[:port], or the registry's service in a pod.</summary>
    public string Registry { get; }

    /// <summary>The repository's namespace.</summary>
    public string Namespace { get; }

    /// <summary>The pushing service account's namespace: the repository's, or the pod's for the pod's own account.</summary>
    public string AccountNamespace { get; }

    public string ServiceAccount { get; }

    /// <summary>The CA that signs the registry's certificate: the ingress CA for the route, the service CA for the service.</summary>
    public X509Certificate2Collection TrustedCertificates { get; }

    public IRefreshableCredentialProvider Credentials { get; }

    public string Account => $"system:serviceaccount:{AccountNamespace}:{ServiceAccount}";

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
        string accountNamespace, account;
        IRefreshableCredentialProvider credentials;
        if (session.InCluster is { } self && string.IsNullOrWhiteSpace(serviceAccount))
        {
            // The pod's own account, as the API server knows it: no TokenRequest (which would need 'create' on
            // serviceaccounts/token for another account, a right a pipeline's account rarely has).
            var own = File.Exists(self.TokenPath) ? PodServiceAccountCredentialProvider.AccountOf(await File.ReadAllTextAsync(self.TokenPath, cancellationToken).ConfigureAwait(false)) : null;
            var podNamespace = Path.Combine(self.Directory, "namespace");
            (accountNamespace, account) = own ?? (File.Exists(podNamespace) ? File.ReadAllText(podNamespace).Trim() : ns, "(the pod's service account)");
            credentials = new PodServiceAccountCredentialProvider(host, self.TokenPath);
        }
        else
        {
            (accountNamespace, account) = (ns, string.IsNullOrWhiteSpace(serviceAccount) ? DefaultServiceAccount : serviceAccount.Trim());
            var tokens = new ServiceAccountTokenSource(session, ns, account, ServiceAccountTokens.DefaultLifetime);
            await tokens.GetAsync(refresh: false, cancellationToken).ConfigureAwait(false);
            credentials = new ServiceAccountCredentialProvider(host, tokens, $"system:serviceaccount:{ns}:{account}");
        }
        var described = $"system:serviceaccount:{accountNamespace}:{account}";
        session.Log.Info(host == RegistryRoute.InternalHost
            ? $"Pushing to the cluster's registry service {host} as {described}, trusting the service CA {trustSource}."
            : $"Pushing to the cluster's registry route {host} as {described}, trusting {trustSource}.");
        return new ClusterRegistryAccess(host, ns, accountNamespace, account, trusted, credentials);
    }

    /// <summary>
    /// The registry's 403 says only "denied"; this names the account and the permission it lacks, and how to grant it.
    /// </summary>
    public VddkException ExplainDenied(VddkException denied, string repository) => new(ErrorCodes.RegistryPushForbidden,
        $"The cluster's registry refused the push of {repository} by {Account}: the service account lacks 'update' on imagestreams/layers " +
        $"(and 'create' on imagestreams for the first push) in namespace \"{Namespace}\", which ClusterRole system:image-builder grants. " +
        $"Grant it with: oc policy add-role-to-user system:image-builder {(AccountNamespace == Namespace ? $"-z {ServiceAccount}" : Account)} -n {Namespace}, or set VddkServiceAccount to an account that has it. " +
        $"(Registry said: {denied.Message})",
        repository, denied);
}
