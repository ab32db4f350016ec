using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// The cluster's default ingress: a CA of its own (the ingress operator's signer), whose wildcard certificate
/// OpenShift keeps in secret <c>router-certs-default</c> (tls.crt = leaf + CA). Routes are simulated by HTTPS servers
/// on 127.0.0.1 with certificates this CA signs, so clients must trust exactly what the cluster publishes.
/// </summary>
public sealed class SimulatedIngress : IDisposable
{
    public const string RouterSecretNamespace = "openshift-ingress";
    public const string RouterSecretName = "router-certs-default";

    private SimulatedIngress(LoopbackCertificates certificates) => Certificates = certificates;

    public LoopbackCertificates Certificates { get; }

    /// <summary>The ingress CA certificate in PEM.</summary>
    public string CaPem => Certificates.AuthorityPem;

    public static SimulatedIngress Create() => new(LoopbackCertificates.Create("ingress-operator@vddkbuild-loopback", "*.apps.vddk.test"));

    /// <summary>A certificate for one route server (the router presents the same wildcard; a fresh leaf is as good).</summary>
    public X509Certificate2 IssueRouteCertificate() => Certificates.IssueServerCertificate("*.apps.vddk.test", "*.apps.vddk.test");

    /// <summary>
    /// Writes <c>router-certs-default</c> (and the default IngressController). <paramref name="includeCa"/> false
    /// leaves only the leaf in tls.crt, as on clusters whose default certificate was replaced without its chain.
    /// </summary>
    public void Publish(KubeObjectStore store, bool includeCa = true)
    {
        var tlsCrt = includeCa ? Certificates.ServerChainPem : Certificates.Server.ExportCertificatePem() + "\n";
        var key = Certificates.Server.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();
        var secret = new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = RouterSecretName, ["namespace"] = RouterSecretNamespace },
            ["type"] = "kubernetes.io/tls",
            ["data"] = new JsonObject
            {
                ["tls.crt"] = Convert.ToBase64String(Encoding.ASCII.GetBytes(tlsCrt)),
                ["tls.key"] = Convert.ToBase64String(Encoding.ASCII.GetBytes(key)),
            },
        };
        if (store.Get(KubeResources.Secrets, RouterSecretNamespace, RouterSecretName) is null)
        {
            store.Create(KubeResources.Secrets, RouterSecretNamespace, secret);
        }
        else
        {
            store.Update(KubeResources.Secrets, RouterSecretNamespace, RouterSecretName, s => s["data"] = secret["data"]!.DeepClone());
        }
    }

    public void Dispose() => Certificates.Dispose();
}
