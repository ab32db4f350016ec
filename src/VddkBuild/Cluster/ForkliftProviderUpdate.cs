using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Points a Forklift (MTV) vSphere Provider at the VDDK image: <c>spec.settings.vddkInitImage</c>, by digest so that
/// Forklift validates the new image (its validation job is keyed by the image string) and nodes never run a stale tag.
/// The "skip VDDK" annotation is removed, since it would make Forklift ignore the image.
/// </summary>
public static class ForkliftProviderUpdate
{
    public const string DefaultNamespace = "openshift-mtv";
    public const string SkipVddkAnnotation = "forklift.konveyor.io/empty-vddk-init-image";

    /// <summary>VddkForkliftProvider: <c>name</c> (in <paramref name="defaultNamespace"/>) or <c>namespace/name</c>.</summary>
    public static ClusterObjectRef ParseProvider(string provider, string defaultNamespace = DefaultNamespace)
    {
        var parts = provider.Trim().Split('/');
        if (parts.Length > 2 || parts.Any(string.IsNullOrWhiteSpace))
        {
            throw new VddkException(ErrorCodes.PropertyInvalid,
                $"VddkForkliftProvider '{provider}' is not 'name' or 'namespace/name'.", provider);
        }
        return parts.Length == 2
            ? new ClusterObjectRef(ClusterResource.ForkliftProviders, parts[0], parts[1])
            : new ClusterObjectRef(ClusterResource.ForkliftProviders, defaultNamespace, parts[0]);
    }

    /// <param name="imageReference">The in-cluster reference by digest, e.g. image-registry.openshift-image-registry.svc:5000/openshift-mtv/vddk@sha256:...</param>
    public static Task RunAsync(ClusterSession session, ClusterObjectRef provider, string imageReference, CancellationToken cancellationToken) =>
        ClusterRetry.OnConflictAsync(session, provider, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<bool> (ct) =>
        {
            var current = await ClusterObjects.GetAsync(session, provider, ct).ConfigureAwait(false)
                ?? throw new VddkException(ErrorCodes.ForkliftProviderNotFound,
                    $"{provider} does not exist. Set VddkForkliftProvider to an existing vSphere provider ('name' or 'namespace/name').", provider.ToString());
            var type = ClusterObjects.String(current, "spec", "type");
            if (type is not null && type != "vsphere")
            {
                throw new VddkException(ErrorCodes.PropertyInvalid,
                    $"{provider} is a '{type}' provider; a VDDK image only applies to vSphere providers.", provider.ToString());
            }
            var patch = new JsonObject { ["spec"] = new JsonObject { ["settings"] = new JsonObject { ["vddkInitImage"] = imageReference } } };
            if (current["metadata"]?["annotations"]?[SkipVddkAnnotation] is not null)
            {
                patch["metadata"] = new JsonObject { ["annotations"] = new JsonObject { [SkipVddkAnnotation] = null } };
            }
            var changes = MergePatchDiff.Changes(provider, current, patch);
            if (changes.Count == 0)
            {
                session.Log.Detail($"{provider} already uses {imageReference}.");
                return true;
            }
            session.Changes.Record(changes);
            if (session.DryRun)
            {
                return true;
            }
            var metadata = patch["metadata"] as JsonObject ?? new JsonObject();
            metadata["resourceVersion"] = ClusterObjects.String(current, "metadata", "resourceVersion");
            patch["metadata"] = metadata;
            await ClusterObjects.MergePatchAsync(session, provider, patch, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken);
}
