using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Step 5: <c>configs.imageregistry.operator.openshift.io/cluster</c> on the S3 bucket: Managed, replicas only when
/// asked for (the cluster's count is kept otherwise), unmanaged
/// storage with s3 {bucket, region, regionEndpoint, trustedCA, virtualHostedStyle false}, every other storage type
/// set to null (a merge patch that leaves emptyDir next to s3 breaks the operator: "exactly one storage type"), and
/// <c>defaultRoute: true</c> (without it there is no route to push to) and <c>disableRedirect: true</c> (blobs are served
/// through the registry instead of by a redirect to the external S3 route, which nodes need not reach). Patched with the read resourceVersion as a
/// precondition, then re-read: fields the operator dropped are applied again.
/// </summary>
public static class RegistryConfigStep
{
    public const string ConfigName = "cluster";

    /// <summary>Every storage type the operator knows besides s3; exactly one may be set.</summary>
    private static readonly string[] OtherStorageTypes = ["emptyDir", "pvc", "gcs", "swift", "azure", "ibmcos", "oss"];

    /// <summary>
    /// Every s3 field of openshift/api imageregistry/v1 that this step does not set: nulled, so nothing from an earlier
    /// storage survives (encrypt/keyID of an AWS-managed bucket sent to NooBaa, a CloudFront front, a chunk size).
    /// </summary>
    private static readonly string[] UnsetS3Fields = ["encrypt", "keyID", "cloudFront", "chunkSizeMiB"];

    public static readonly ClusterObjectRef Config = new(ClusterResource.ImageRegistryConfigs, null, ConfigName);

    /// <returns>True when the config was changed (or, in a dry run, would be): a registry rollout follows.</returns>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<bool> RunAsync(ClusterSession session, BucketFacts bucket, string trustedCaConfigMap, RegistryConfigOptions options, CancellationToken cancellationToken)
    {
        var desired = Desired(bucket, trustedCaConfigMap, options);
        await RegistryEgressProxy.WarnIfProxiedAsync(session, await ClusterObjects.GetAsync(session, Config, cancellationToken).ConfigureAwait(false),
            bucket.Endpoint, cancellationToken).ConfigureAwait(false);
        var changed = false;
        for (var round = 0; ; round++)
        {
            var applied = await ClusterRetry.OnConflictAsync(session, Config, ct => ApplyOnceAsync(session, desired, options, ct), cancellationToken).ConfigureAwait(false);
            changed |= applied;
            if (!applied || session.DryRun)
            {
                return changed;
            }
            // The operator syncs right after our write and has been seen to overwrite user config; read back.
            await session.DelayAsync(cancellationToken).ConfigureAwait(false);
            var after = await ClusterObjects.GetAsync(session, Config, cancellationToken).ConfigureAwait(false);
            var dropped = MergePatchDiff.Compare(after, desired);
            if (dropped.Count == 0)
            {
                return true;
            }
            var fields = string.Join(", ", dropped.Select(d => d.Path));
            if (round + 1 >= options.ReapplyAttempts)
            {
                throw new VddkException(ErrorCodes.RegistryConfigNotApplied,
                    $"{Config} keeps losing {fields} after being patched {round + 1} times; something else (the operator or another tool) reverts it. " +
                    "Check the image registry operator's logs and other automation that manages this config.", Config.ToString());
            }
            session.Log.Warn(ErrorCodes.RegistryConfigReapplied, $"{Config} lost {fields} right after the patch; applying it again.");
        }
    }

    /// <summary>The desired state as a merge patch (rolloutStrategy is decided per attempt).</summary>
    public static JsonObject Desired(BucketFacts bucket, string trustedCaConfigMap, RegistryConfigOptions options)
    {
        var storage = new JsonObject { ["managementState"] = "Unmanaged" };
        foreach (var other in OtherStorageTypes)
        {
            storage[other] = null;
        }
        storage["s3"] = new JsonObject
        {
            ["bucket"] = bucket.BucketName,
            ["region"] = options.Region,
            ["regionEndpoint"] = bucket.Endpoint.GetLeftPart(UriPartial.Authority),
            ["trustedCA"] = new JsonObject { ["name"] = trustedCaConfigMap },
            ["virtualHostedStyle"] = false,
        };
        foreach (var unset in UnsetS3Fields)
        {
            ((JsonObject)storage["s3"]!)[unset] = null;
        }
        var spec = new JsonObject { ["managementState"] = "Managed" };
        if (options.Replicas is { } replicas)
        {
            spec["replicas"] = replicas;
        }
        spec["defaultRoute"] = true;
        // Without it the registry answers node pulls with a redirect to a presigned URL on the external S3 route,
        // which nodes (CRI-O) may neither resolve nor trust: Forklift's "Error pulling VDDK image".
        spec["disableRedirect"] = true;
        spec["storage"] = storage;
        return new JsonObject { ["spec"] = spec };
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<bool> ApplyOnceAsync(ClusterSession session, JsonObject desired, RegistryConfigOptions options, CancellationToken cancellationToken)
    {
        var current = await ClusterObjects.GetAsync(session, Config, cancellationToken).ConfigureAwait(false)
            ?? throw new VddkException(ErrorCodes.ClusterObjectNotFound,
                $"{Config} does not exist; the cluster image registry operator is not installed (or the ImageRegistry capability is disabled).", Config.ToString());
        var patch = (JsonObject)desired.DeepClone();
        // s3 fields newer than this code: nulled as well, whatever they are.
        if (current["spec"]?["storage"]?["s3"] is JsonObject currentS3 && patch["spec"]?["storage"]?["s3"] is JsonObject patchS3)
        {
            foreach (var (field, _) in currentS3.Where(p => !patchS3.ContainsKey(p.Key)).ToList())
            {
                patchS3[field] = null;
            }
        }
        if (MergePatchDiff.Compare(current, patch).Count == 0)
        {
            session.Log.Detail($"{Config} already uses bucket {ClusterObjects.String(current, "spec", "storage", "s3", "bucket")}.");
            return false;
        }
        RefuseUnsafeSwitch(current, ClusterObjects.String(desired, "spec", "storage", "s3", "bucket"), options);
        var wasManaged = ClusterObjects.String(current, "spec", "managementState") == "Managed";
        var strategy = options.RolloutStrategy ?? (wasManaged ? "Recreate" : null);
        if (strategy is not null)
        {
            ((JsonObject)patch["spec"]!)["rolloutStrategy"] = strategy;
        }
        session.Changes.Record(MergePatchDiff.Changes(Config, current, patch));
        if (session.DryRun)
        {
            return true;
        }
        patch["metadata"] = new JsonObject { ["resourceVersion"] = ClusterObjects.String(current, "metadata", "resourceVersion") };
        await ClusterObjects.MergePatchAsync(session, Config, patch, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Before any step writes: refuses (VDDK4022, VDDK4021) exactly what step 5 would refuse, unless the registry already
    /// runs on <paramref name="bucketName"/>. The earlier steps are not harmless on such a cluster: the operator takes
    /// the S3 keys from image-registry-private-configuration-user in preference to installer-cloud-credentials, so
    /// writing the bucket's keys there cuts a registry on another S3 bucket (the installer's on AWS) off its storage.
    /// </summary>
    /// <param name="bucketName">The bucket the registry is to use; null when not known yet (any S3 storage then counts as another bucket).</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public static async Task CheckSwitchAllowedAsync(ClusterSession session, string? bucketName, RegistryConfigOptions options, CancellationToken cancellationToken)
    {
        var current = await ClusterObjects.GetAsync(session, Config, cancellationToken).ConfigureAwait(false);
        if (current is null || (bucketName is not null && ClusterObjects.String(current, "spec", "storage", "s3", "bucket") == bucketName))
        {
            return;
        }
        RefuseUnsafeSwitch(current, bucketName, options);
    }

    /// <summary>
    /// An administrator's Unmanaged is left alone, and storage that holds images is not replaced without being asked
    /// to: the image streams of every namespace would point at blobs the registry can no longer reach. Removed, no
    /// storage and emptyDir (lost with every pod restart anyway) are replaced freely.
    /// </summary>
    private static void RefuseUnsafeSwitch(JsonObject current, string? bucket, RegistryConfigOptions options)
    {
        var state = ClusterObjects.String(current, "spec", "managementState");
        if (state == "Unmanaged")
        {
            throw new VddkException(ErrorCodes.RegistryUnmanaged,
                $"{Config} has spec.managementState Unmanaged: an administrator chose to run the registry by hand, and this build does not change " +
                "that choice. Configure the bucket by hand, or set it back to Managed first " +
                "(oc patch configs.imageregistry.operator.openshift.io cluster --type merge -p '{\"spec\":{\"managementState\":\"Managed\"}}') and run the build again.",
                Config.ToString());
        }
        if (state == "Removed" || options.ReplaceStorage || current["spec"]?["storage"] is not JsonObject storage)
        {
            return;
        }
        var inUse = storage.Where(p => p.Key != "managementState" && p.Value is JsonObject && p.Key != "emptyDir")
            .Where(p => p.Key != "s3" || ClusterObjects.String(p.Value, "bucket") != bucket)
            .Select(p => Describe(p.Key, (JsonObject)p.Value!))
            .ToList();
        if (inUse.Count > 0)
        {
            throw new VddkException(ErrorCodes.RegistryStorageInUse,
                $"{Config} already stores images in {string.Join(" and ", inUse)}; switching it to bucket \"{bucket}\" would leave every image pushed there " +
                "unreachable (image streams in every namespace keep pointing at blobs the registry no longer has). Copy what is needed first, " +
                "then set VddkReplaceRegistryStorage=true to switch the registry's storage anyway.", Config.ToString());
        }
    }

    private static string Describe(string type, JsonObject storage)
    {
        var name = type switch
        {
            "s3" or "gcs" or "ibmcos" or "oss" => ClusterObjects.String(storage, "bucket") is { } b ? $"bucket \"{b}\"" : null,
            "pvc" => ClusterObjects.String(storage, "claim") is { } c ? $"claim \"{c}\"" : null,
            "azure" or "swift" => ClusterObjects.String(storage, "container") is { } c ? $"container \"{c}\"" : null,
            _ => null,
        };
        return name is null ? $"{type} storage" : $"{type} storage ({name})";
    }
}
