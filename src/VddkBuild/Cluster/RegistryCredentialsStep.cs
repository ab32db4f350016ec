using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Step 3: the S3 keys for the registry operator, in Secret <c>image-registry-private-configuration-user</c>
/// (openshift-image-registry). Written only when a value differs, because every update rolls the registry out again.
/// Values never reach a log or plan line.
/// </summary>
public static class RegistryCredentialsStep
{
    public const string SecretName = "image-registry-private-configuration-user";
    public const string Namespace = "openshift-image-registry";
    public const string AccessKeyKey = "REGISTRY_STORAGE_S3_ACCESSKEY";
    public const string SecretKeyKey = "REGISTRY_STORAGE_S3_SECRETKEY";

    public static Task RunAsync(ClusterSession session, BucketCredentials credentials, CancellationToken cancellationToken)
    {
        var target = new ClusterObjectRef(ClusterResource.Secrets, Namespace, SecretName);
        return ClusterRetry.OnConflictAsync(session, target, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<bool> (ct) =>
        {
            var current = await ClusterErrors.GetOrNullAsync(session, target,
                c => session.Api.CoreV1.ReadNamespacedSecretAsync(SecretName, Namespace, cancellationToken: c), ct).ConfigureAwait(false);
            var desired = new Dictionary<string, string> { [AccessKeyKey] = credentials.AccessKeyId, [SecretKeyKey] = credentials.SecretAccessKey };
            var changes = new List<ClusterChange>();
            foreach (var (key, value) in desired)
            {
                var existing = current?.Data?.TryGetValue(key, out var bytes) == true ? bytes : null;
                if (existing is null || !existing.AsSpan().SequenceEqual(Encoding.UTF8.GetBytes(value)))
                {
                    changes.Add(new ClusterChange(target, $"data.{key}", existing is null ? null : ClusterChange.Redacted, ClusterChange.Redacted));
                }
            }
            if (changes.Count == 0)
            {
                session.Log.Detail($"{target} already holds the bucket's keys.");
                return true;
            }
            session.Changes.Record(changes);
            if (session.DryRun)
            {
                return true;
            }
            if (current is null)
            {
                await ClusterErrors.CallAsync(session, "create", target, c => session.Api.CoreV1.CreateNamespacedSecretAsync(
                    new V1Secret
                    {
                        Metadata = new V1ObjectMeta { Name = SecretName, NamespaceProperty = Namespace },
                        Type = "Opaque",
                        Data = desired.ToDictionary(p => p.Key, p => Encoding.UTF8.GetBytes(p.Value)),
                    }, Namespace, cancellationToken: c), ct).ConfigureAwait(false);
            }
            else
            {
                var data = new JsonObject();
                foreach (var (key, value) in desired)
                {
                    data[key] = Convert.ToBase64String(Encoding.UTF8.GetBytes(value));
                }
                var patch = new JsonObject { ["metadata"] = new JsonObject { ["resourceVersion"] = current.Metadata.ResourceVersion }, ["data"] = data };
                await ClusterErrors.CallAsync(session, "patch", target, c => session.Api.CoreV1.PatchNamespacedSecretAsync(
                    new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), SecretName, Namespace, cancellationToken: c), ct).ConfigureAwait(false);
            }
            return true;
        }, cancellationToken);
    }
}
