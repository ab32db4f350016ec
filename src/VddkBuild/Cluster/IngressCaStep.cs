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
/// ingress CA), together with ConfigMap openshift-config-managed/default-ingress-cert (the ingress CA) when present -
/// with <c>trustedCA</c> set the operator drops the system pool, so the root must be in the bundle. Published as
/// ConfigMap <c>image-registry-s3-bundle</c> in openshift-config, key ca-bundle.crt; written only when different.
/// </summary>
public static class IngressCaStep
{
    public const string ConfigMapName = "image-registry-s3-bundle";
    public const string ConfigMapNamespace = "openshift-config";
    public const string BundleKey = "ca-bundle.crt";

    /// <summary>Reads the ingress CA without writing anything (PublishVddk uses it to trust the registry route).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<IngressCa> ReadAsync(ClusterSession session, CancellationToken cancellationToken)
    {
        var controller = new ClusterObjectRef(ClusterResource.IngressControllers, "openshift-ingress-operator", "default");
        var ingressController = await ClusterObjects.GetAsync(session, controller, cancellationToken).ConfigureAwait(false);
        var secretName = ClusterObjects.String(ingressController, "spec", "defaultCertificate", "name") ?? "router-certs-default";
        var secretRef = new ClusterObjectRef(ClusterResource.Secrets, "openshift-ingress", secretName);
        var secret = await ClusterErrors.GetOrNullAsync(session, secretRef,
            ct => session.Api.CoreV1.ReadNamespacedSecretAsync(secretName, "openshift-ingress", cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        var managedRef = new ClusterObjectRef(ClusterResource.ConfigMaps, "openshift-config-managed", "default-ingress-cert");
        var managed = await ClusterErrors.GetOrNullAsync(session, managedRef,
            ct => session.Api.CoreV1.ReadNamespacedConfigMapAsync("default-ingress-cert", "openshift-config-managed", cancellationToken: ct), cancellationToken).ConfigureAwait(false);

        var fromSecret = ClusterCertificates.Parse(secret?.Data?.TryGetValue("tls.crt", out var crt) == true ? Encoding.ASCII.GetString(crt) : null);
        var fromManaged = ClusterCertificates.Parse(managed?.Data?.TryGetValue(BundleKey, out var bundle) == true ? bundle : null);
        var all = fromSecret.Concat(fromManaged).ToList();
        if (all.Count == 0)
        {
            throw new VddkException(ErrorCodes.IngressCertificateNotFound,
                $"No ingress certificate found: {secretRef} {(secret is null ? "does not exist" : "has no certificate in tls.crt")} and {managedRef} " +
                $"{(managed is null ? "does not exist" : "has no certificate")}. Check the default IngressController's spec.defaultCertificate.", secretRef.ToString());
        }
        var sources = new List<string>();
        if (fromSecret.Count > 0) sources.Add(secretRef.ToString());
        if (fromManaged.Count > 0) sources.Add(managedRef.ToString());
        var source = string.Join(" + ", sources);
        if (!all.Any(ClusterCertificates.IsSelfSigned))
        {
            session.Log.Warn(ErrorCodes.IngressCaWithoutRoot,
                $"The ingress certificates from {source} contain no root CA; the registry trusts only this bundle for S3, so TLS to the S3 route may fail " +
                "with 'x509: certificate signed by unknown authority'. Add the root CA of the ingress certificate to the secret's tls.crt.");
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

    /// <summary>A bundle in a plan line: its certificates' subjects, not kilobytes of PEM.</summary>
    private static string Describe(string pem)
    {
        var certificates = ClusterCertificates.Parse(pem);
        return certificates.Count == 0 ? $"{pem.Length} characters, no certificate" : $"[{string.Join("; ", certificates.Select(c => c.Subject))}]";
    }
}
