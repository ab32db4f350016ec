using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace VddkBuild.Cluster;

/// <summary>
/// Whether a route's certificate is trusted the way the registry trusts its S3 endpoint: the system trust store plus
/// the ingress bundle (openshift/api #1180: trustedCA is used together with the system trust bundle). A custom default
/// certificate from a public or enterprise CA whose tls.crt leaves out the root is therefore fine when that root is a
/// system one; the bundle's intermediates help build the chain, its self-signed certificates anchor it.
/// </summary>
public static class IngressTrust
{
    /// <param name="systemRoots">Null: the machine's trust store. Tests pass the roots that stand for it.</param>
    public static bool Validate(X509Certificate2 presented, SslPolicyErrors errors, X509Certificate2Collection bundle, X509Certificate2Collection? systemRoots = null)
    {
        if ((errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
        {
            return false;
        }
        if (errors == SslPolicyErrors.None && systemRoots is null)
        {
            return true;
        }
        return ChainsTo(presented, bundle, anchors: systemRoots, useSystem: systemRoots is null)
            || ChainsTo(presented, bundle, anchors: SelfSigned(bundle), useSystem: false);
    }

    /// <summary>Whether some certificate of the bundle chains to a system root (so a bundle without a root still works).</summary>
    public static bool AnyChainsToSystem(IEnumerable<X509Certificate2> bundle, X509Certificate2Collection? systemRoots = null)
    {
        var all = new X509Certificate2Collection();
        all.AddRange(bundle.ToArray());
        return all.Cast<X509Certificate2>().Any(c => !ClusterCertificates.IsSelfSigned(c) && ChainsTo(c, all, systemRoots, systemRoots is null));
    }

    private static bool ChainsTo(X509Certificate2 presented, X509Certificate2Collection bundle, X509Certificate2Collection? anchors, bool useSystem)
    {
        if (!useSystem && anchors is not { Count: > 0 })
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.TrustMode = useSystem ? X509ChainTrustMode.System : X509ChainTrustMode.CustomRootTrust;
        if (!useSystem)
        {
            chain.ChainPolicy.CustomTrustStore.AddRange(anchors!);
        }
        foreach (var ca in bundle)
        {
            if (!ClusterCertificates.IsSelfSigned(ca))
            {
                chain.ChainPolicy.ExtraStore.Add(ca);
            }
        }
        return chain.Build(presented);
    }

    private static X509Certificate2Collection SelfSigned(X509Certificate2Collection bundle) =>
        new(bundle.Cast<X509Certificate2>().Where(ClusterCertificates.IsSelfSigned).ToArray());
}
