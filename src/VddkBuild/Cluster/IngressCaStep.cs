using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Step 4: the CA bundle the registry uses to trust the S3 route. Source: the default IngressController's
/// <c>spec.defaultCertificate</c> secret (else <c>router-certs-default</c>) in openshift-ingress, key tls.crt (leaf plus
/// ingress CA), together with ConfigMap openshift-config-managed/default-ingress-cert (the ingress CA) when present.
/// The registry uses <c>trustedCA</c> together with the system trust bundle (openshift/api #1180), so a root that is
/// neither in the bundle nor a system root is what breaks TLS to the S3 route. Published as
/// ConfigMap <c>image-registry-s3-bundle</c> in openshift-config, key ca-bundle.crt; written only when different.
/// </summary>
public static class IngressCaStep
{
    public const string ConfigMapName = "image-registry-s3-bundle";
    public const string ConfigMapNamespace = "openshift-config";
    public const string BundleKey = "ca-bundle.crt";

    /// <summary>The ingress CA the ingress operator publishes so that components can trust routes without the router's Secret.</summary>
    public static readonly ClusterObjectRef ManagedRef = new(ClusterResource.ConfigMaps, "openshift-config-managed", "default-ingress-cert");

    /// <summary>
    /// Reads the ingress CA without writing anything (PublishVddk uses it to trust the registry route). A source the
    /// account may not read (403) is skipped: default-ingress-cert alone is enough, and a CI account should never be
    /// allowed to read the router's Secret (its tls.key is the private key of every route). Fails only when no source
    /// gave a certificate, naming every refused read and the one grant that suffices.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<IngressCa> ReadAsync(ClusterSession session, CancellationToken cancellationToken)
    {
        var refused = new List<RefusedRead>();
        var controller = new ClusterObjectRef(ClusterResource.IngressControllers, "openshift-ingress-operator", "default");
        var controllerRead = await ClusterObjects.GetOrRefusedAsync(session, controller, cancellationToken).ConfigureAwait(false);
        ClusterObjectRef? secretRef = null;
        V1Secret? secret = null;
        RefusedRead? secretRefused = null;
        if (controllerRead.Refused is { } controllerRefused)
        {
            // Without the controller the secret's name is unknown (a custom default certificate lives elsewhere).
            refused.Add(controllerRefused);
            session.Log.Detail($"Skipped {controller} and the certificate Secret it names: {controllerRefused.Permission} The ingress CA comes from {ManagedRef} alone.");
        }
        else
        {
            var secretName = ClusterObjects.String(controllerRead.Value, "spec", "defaultCertificate", "name") ?? "router-certs-default";
            secretRef = new ClusterObjectRef(ClusterResource.Secrets, "openshift-ingress", secretName);
            var secretRead = await ClusterErrors.GetOrRefusedAsync(session, secretRef,
                ct => session.Api.CoreV1.ReadNamespacedSecretAsync(secretName, "openshift-ingress", cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            secret = secretRead.Value;
            secretRefused = secretRead.Refused;
            if (secretRefused is not null)
            {
                refused.Add(secretRefused);
                session.Log.Detail($"Skipped {secretRef}: {secretRefused.Permission} The ingress CA comes from {ManagedRef}.");
            }
        }
        var managedRead = await ClusterErrors.GetOrRefusedAsync(session, ManagedRef,
            ct => session.Api.CoreV1.ReadNamespacedConfigMapAsync(ManagedRef.Name, ManagedRef.Namespace, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        var managed = managedRead.Value;
        if (managedRead.Refused is { } managedRefused)
        {
            refused.Add(managedRefused);
            session.Log.Detail($"Skipped {ManagedRef}: {managedRefused.Permission}");
        }

        var fromSecret = ClusterCertificates.Parse(secret?.Data?.TryGetValue("tls.crt", out var crt) == true ? Encoding.ASCII.GetString(crt) : null);
        var fromManaged = ClusterCertificates.Parse(managed?.Data?.TryGetValue(BundleKey, out var bundle) == true ? bundle : null);
        var all = fromSecret.Concat(fromManaged).ToList();
        if (all.Count == 0)
        {
            var found = new List<string>();
            if (secretRef is not null && secretRefused is null) found.Add($"{secretRef} {(secret is null ? "does not exist" : "has no certificate in tls.crt")}");
            if (managedRead.Refused is null) found.Add($"{ManagedRef} {(managed is null ? "does not exist" : "has no certificate")}");
            if (refused.Count > 0)
            {
                throw new VddkException(ErrorCodes.ClusterForbidden,
                    $"No ingress certificate could be read: the cluster refused {string.Join("; ", refused.Select(r => $"get {r.Target} ({r.Permission})"))}" +
                    $"{(found.Count == 0 ? "" : $", and {string.Join(" and ", found)}")}. {GrantAdvice(refused.Select(r => r.User).FirstOrDefault(u => u is not null))}",
                    ManagedRef.ToString());
            }
            throw new VddkException(ErrorCodes.IngressCertificateNotFound,
                $"No ingress certificate found: {string.Join(" and ", found)}. Check the default IngressController's spec.defaultCertificate.", (secretRef ?? ManagedRef).ToString());
        }
        var sources = new List<string>();
        if (fromSecret.Count > 0) sources.Add(secretRef!.ToString());
        if (fromManaged.Count > 0) sources.Add(ManagedRef.ToString());
        var source = string.Join(" + ", sources);
        if (!all.Any(ClusterCertificates.IsSelfSigned) && !IngressTrust.AnyChainsToSystem(all))
        {
            session.Log.Warn(ErrorCodes.IngressCaWithoutRoot,
                $"The ingress certificates from {source} contain no root CA, and none of them chains to a root in this machine's trust store; the registry " +
                "trusts this bundle plus the system trust store, so TLS to the S3 route may fail with 'x509: certificate signed by unknown authority'. " +
                "Add the root CA of the ingress certificate to the secret's tls.crt.");
        }
        var collection = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        collection.AddRange(all.ToArray());
        return new IngressCa(ClusterCertificates.ToPem(all), collection, source, ConfigMapName);
    }

    /// <summary>Reads the ingress CA and publishes it for the registry operator.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<IngressCa> RunAsync(ClusterSession session, CancellationToken cancellationToken)
    {
        var ca = await ReadAsync(session, cancellationToken).ConfigureAwait(false);
        var target = new ClusterObjectRef(ClusterResource.ConfigMaps, ConfigMapNamespace, ConfigMapName);
        await ClusterRetry.OnConflictAsync(session, target, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<bool> (ct) =>
        {
            var current = await ClusterErrors.GetOrNullAsync(session, target,
                c => session.Api.CoreV1.ReadNamespacedConfigMapAsync(ConfigMapName, ConfigMapNamespace, cancellationToken: c), ct).ConfigureAwait(false);
            var desired = new JsonObject { ["data"] = new JsonObject { [BundleKey] = ca.Pem } };
            var currentJson = current is null ? null : ClusterObjects.ToJson(current);
            var changes = MergePatchDiff.Compare(currentJson, desired)
                .Select(d => new ClusterChange(target, d.Path, d.Old is null ? null : Describe(d.Old.GetValue<string>()), Describe(ca.Pem)))
                .ToList();
            if (changes.Count == 0)
            {
                session.Log.Detail($"{target} already holds the ingress CA bundle.");
                return true;
            }
            session.Changes.Record(changes);
            if (session.DryRun)
            {
                return true;
            }
            if (current is null)
            {
                await ClusterErrors.CallAsync(session, "create", target, c => session.Api.CoreV1.CreateNamespacedConfigMapAsync(
                    new V1ConfigMap { Metadata = new V1ObjectMeta { Name = ConfigMapName, NamespaceProperty = ConfigMapNamespace }, Data = new Dictionary<string, string> { [BundleKey] = ca.Pem } },
                    ConfigMapNamespace, cancellationToken: c), ct).ConfigureAwait(false);
            }
            else
            {
                desired["metadata"] = new JsonObject { ["resourceVersion"] = current.Metadata.ResourceVersion };
                await ClusterErrors.CallAsync(session, "patch", target, c => session.Api.CoreV1.PatchNamespacedConfigMapAsync(
                    new V1Patch(desired.ToJsonString(), V1Patch.PatchType.MergePatch), ConfigMapName, ConfigMapNamespace, cancellationToken: c), ct).ConfigureAwait(false);
            }
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return ca;
    }

    /// <summary>The smallest grant that makes the CA readable: one ConfigMap, never the router's Secret.</summary>
    private static string GrantAdvice(string? user)
    {
        var subject = user ?? "<user>";
        return $"Reading {ManagedRef} is enough: grant {(user is null ? "the build's user" : $"\"{user}\"")} 'get' on that one ConfigMap " +
               $"(oc create role vddk-ingress-ca -n {ManagedRef.Namespace} --verb=get --resource=configmaps --resource-name={ManagedRef.Name} && " +
               $"oc create rolebinding vddk-ingress-ca -n {ManagedRef.Namespace} --role=vddk-ingress-ca --user={subject}). " +
               "Do not grant access to secrets in openshift-ingress: they hold the router's private key.";
    }

    /// <summary>A bundle in a plan line: its certificates' subjects, not kilobytes of PEM.</summary>
    private static string Describe(string pem)
    {
        var certificates = ClusterCertificates.Parse(pem);
        return certificates.Count == 0 ? $"{pem.Length} characters, no certificate" : $"[{string.Join("; ", certificates.Select(c => c.Subject))}]";
    }
}
