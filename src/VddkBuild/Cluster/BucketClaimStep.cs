using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Step 1 of preparing the registry: create (or adopt) the ObjectBucketClaim, wait until it is Bound while reporting
/// the provisioner's Warning events (a taken bucket name leaves the claim Pending forever), then read the bucket
/// facts from the objects named after the claim - not after the bucket, as the documented commands wrongly do.
/// </summary>
public static class BucketClaimStep
{
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<BucketFacts> RunAsync(ClusterSession session, BucketClaimOptions options, CancellationToken cancellationToken)
    {
        var claim = new ClusterObjectRef(ClusterResource.ObjectBucketClaims, options.Namespace, options.ClaimName);
        var current = await ClusterRetry.OnConflictAsync(session, claim, ct => EnsureClaimAsync(session, claim, options, ct), cancellationToken).ConfigureAwait(false);
        if (current is null || !IsBound(current))
        {
            if (session.DryRun)
            {
                session.Log.Info($"Dry run: {claim} is not Bound yet; later steps show the bucket facts as planned values.");
                var endpoint = options.S3Endpoint ?? await FindS3EndpointAsync(session, options, null, required: false, cancellationToken).ConfigureAwait(false)
                    ?? new Uri($"https://{options.S3RouteName}-{options.S3RouteNamespace}.apps.cluster.invalid");
                return new BucketFacts(current is null ? options.BucketName : ClusterObjects.String(current, "spec", "bucketName") ?? options.BucketName,
                    endpoint, "us-east-1", null, null, new BucketCredentials("", ""), Planned: true);
            }
            current = await WaitForBoundAsync(session, claim, options, cancellationToken).ConfigureAwait(false);
        }
        return await ReadFactsAsync(session, claim, current, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The bucket the registry will use, read without writing: an existing claim's <c>.spec.bucketName</c>, else the
    /// name a new claim asks for. Null when an existing claim has no name yet (a generated one, still Pending).
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<string?> PlannedBucketNameAsync(ClusterSession session, BucketClaimOptions options, CancellationToken cancellationToken)
    {
        var claim = new ClusterObjectRef(ClusterResource.ObjectBucketClaims, options.Namespace, options.ClaimName);
        var current = await ClusterObjects.GetAsync(session, claim, cancellationToken).ConfigureAwait(false);
        return current is null ? options.BucketName : ClusterObjects.String(current, "spec", "bucketName");
    }

    /// <summary>Returns the claim as it is (null in a dry run that would create it).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<JsonObject?> EnsureClaimAsync(ClusterSession session, ClusterObjectRef claim, BucketClaimOptions options, CancellationToken cancellationToken)
    {
        var current = await ClusterObjects.GetAsync(session, claim, cancellationToken).ConfigureAwait(false);
        if (current is not null)
        {
            var storageClass = ClusterObjects.String(current, "spec", "storageClassName");
            var bucket = ClusterObjects.String(current, "spec", "bucketName");
            session.Log.Info($"Using the existing {claim} (bucket \"{bucket}\", phase {ClusterObjects.String(current, "status", "phase") ?? "unknown"}).");
            if (storageClass != options.StorageClass)
            {
                session.Log.Warn(ErrorCodes.BucketClaimSettingsDiffer,
                    $"{claim} uses storage class \"{storageClass}\", not \"{options.StorageClass}\"; it is used as it is (a claim's spec cannot be changed: delete it to recreate).");
            }
            return current;
        }
        var desired = new JsonObject
        {
            ["spec"] = new JsonObject
            {
                ["storageClassName"] = options.StorageClass,
                ["bucketName"] = options.BucketName,
            },
        };
        session.Changes.Record(MergePatchDiff.Changes(claim, null, desired));
        if (session.DryRun)
        {
            return null;
        }
        return await ClusterObjects.CreateAsync(session, claim, desired, cancellationToken).ConfigureAwait(false);
    }

    private static bool IsBound(JsonObject claim) =>
        string.Equals(ClusterObjects.String(claim, "status", "phase"), "Bound", StringComparison.OrdinalIgnoreCase);

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<JsonObject> WaitForBoundAsync(ClusterSession session, ClusterObjectRef claim, BucketClaimOptions options, CancellationToken cancellationToken)
    {
        var started = session.Clock.GetUtcNow();
        var reported = new HashSet<string>(StringComparer.Ordinal);
        var warnings = new List<string>();
        session.Log.Info($"Waiting up to {options.BoundTimeout.TotalSeconds:0} s for {claim} to be Bound.");
        while (true)
        {
            var current = await ClusterObjects.GetAsync(session, claim, cancellationToken).ConfigureAwait(false)
                ?? throw new VddkException(ErrorCodes.ClusterObjectNotFound, $"{claim} disappeared while waiting for it to be Bound. Run the build again.", claim.ToString());
            if (IsBound(current))
            {
                session.Log.Info($"{claim} is Bound.");
                return current;
            }
            foreach (var warning in await ListWarningsAsync(session, claim, cancellationToken).ConfigureAwait(false))
            {
                if (reported.Add(warning.Key))
                {
                    warnings.Add(warning.Text);
                    session.Log.Warn(ErrorCodes.BucketClaimWarningEvent, $"{claim}: {warning.Text}");
                }
            }
            if (string.Equals(ClusterObjects.String(current, "status", "phase"), "Failed", StringComparison.OrdinalIgnoreCase))
            {
                // lib-bucket-provisioner's terminal phase: waiting longer changes nothing.
                var events = warnings.Count == 0 ? "" : $" The provisioner reported: {string.Join(" | ", warnings.TakeLast(3))}.";
                throw new VddkException(ErrorCodes.BucketClaimFailed,
                    $"{claim} is Failed (status: {Quote(current["status"])}).{events} Fix the cause, delete the claim and run the build again " +
                    "(a taken bucket name: choose another VddkBucketName).", claim.ToString());
            }
            var waited = session.Clock.GetUtcNow() - started;
            if (waited >= options.BoundTimeout)
            {
                var phase = ClusterObjects.String(current, "status", "phase") ?? "no phase";
                var why = warnings.Count == 0
                    ? "The provisioner reported no Warning event; check that the storage class exists and its provisioner (NooBaa) is running."
                    : $"The provisioner reported: {string.Join(" | ", warnings.TakeLast(3))}. A taken bucket name is the usual cause: NooBaa bucket names are global, so choose another VddkBucketName (and delete this claim).";
                throw new VddkException(ErrorCodes.BucketClaimTimeout,
                    $"{claim} is still {phase} after {waited.TotalSeconds:0} s. {why}", claim.ToString());
            }
            session.Log.Detail($"{claim} is {ClusterObjects.String(current, "status", "phase") ?? "not provisioned yet"} ({waited.TotalSeconds:0} s).");
            await session.DelayAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The claim's status as compact JSON (it holds no keys), cut to a readable length.</summary>
    private static string Quote(JsonNode? status)
    {
        var text = status?.ToJsonString() ?? "{}";
        return text.Length > 500 ? text[..500] + "..." : text;
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<IReadOnlyList<(string Key, string Text)>> ListWarningsAsync(ClusterSession session, ClusterObjectRef claim, CancellationToken cancellationToken)
    {
        var events = await ClusterErrors.CallAsync(session, "list", new ClusterObjectRef(ClusterResource.Events, claim.Namespace, $"involvedObject.name={claim.Name}"),
            ct => session.Api.CoreV1.ListNamespacedEventAsync(claim.Namespace!, fieldSelector: $"involvedObject.name={claim.Name}", cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        return events.Items
            .Where(e => e.Type == "Warning" && (e.InvolvedObject?.Kind is null || e.InvolvedObject.Kind == ClusterResource.ObjectBucketClaims.Kind))
            .OrderBy(e => e.LastTimestamp ?? e.EventTime ?? e.Metadata.CreationTimestamp)
            .Select(e => ($"{e.Metadata.Uid}/{e.Count}", $"{e.Reason}: {e.Message}"))
            .ToList();
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<BucketFacts> ReadFactsAsync(ClusterSession session, ClusterObjectRef claim, JsonObject current, BucketClaimOptions options, CancellationToken cancellationToken)
    {
        var ns = claim.Namespace!;
        var secretRef = new ClusterObjectRef(ClusterResource.Secrets, ns, claim.Name);
        var configMapRef = new ClusterObjectRef(ClusterResource.ConfigMaps, ns, claim.Name);
        var secret = await ClusterErrors.GetOrNullAsync(session, secretRef, ct => session.Api.CoreV1.ReadNamespacedSecretAsync(claim.Name, ns, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        var configMap = await ClusterErrors.GetOrNullAsync(session, configMapRef, ct => session.Api.CoreV1.ReadNamespacedConfigMapAsync(claim.Name, ns, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        if (secret is null || configMap is null)
        {
            throw new VddkException(ErrorCodes.BucketClaimIncomplete,
                $"{claim} is Bound but its {(secret is null ? secretRef : configMapRef)} does not exist; the provisioner creates both with the claim's name. Check the provisioner's logs.", claim.ToString());
        }
        string SecretValue(string key) =>
            secret.Data?.TryGetValue(key, out var bytes) == true && bytes.Length > 0
                ? Encoding.UTF8.GetString(bytes)
                : throw new VddkException(ErrorCodes.BucketClaimIncomplete, $"{secretRef} has no key {key}; the bucket claim's provisioner should have written it.", secretRef.ToString());
        string? Fact(string key) => configMap.Data?.TryGetValue(key, out var value) == true && !string.IsNullOrWhiteSpace(value) ? value : null;

        var bucket = ClusterObjects.String(current, "spec", "bucketName") ?? Fact("BUCKET_NAME")
            ?? throw new VddkException(ErrorCodes.BucketClaimIncomplete, $"{claim} is Bound but names no bucket (.spec.bucketName and BUCKET_NAME are empty).", claim.ToString());
        var endpoint = options.S3Endpoint ?? await FindS3EndpointAsync(session, options, Fact("BUCKET_HOST"), required: true, cancellationToken).ConfigureAwait(false);
        var port = int.TryParse(Fact("BUCKET_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : (int?)null;
        var facts = new BucketFacts(bucket, endpoint!, Fact("BUCKET_REGION") ?? "us-east-1", Fact("BUCKET_HOST"), port,
            new BucketCredentials(SecretValue("AWS_ACCESS_KEY_ID"), SecretValue("AWS_SECRET_ACCESS_KEY")));
        session.Log.Info($"Bucket \"{facts.BucketName}\" at {facts.Endpoint} (region {facts.Region}).");
        return facts;
    }

    /// <summary>
    /// The external S3 URL: Route <c>s3</c> in openshift-storage (NooBaa's), unless the claim's BUCKET_HOST names another
    /// in-cluster service (ODF's Ceph object gateway, <c>rook-ceph-rgw-*.openshift-storage.svc</c>, for the
    /// ocs-storagecluster-ceph-rgw class): its bucket and keys exist only there, so the route leading to that service is
    /// used, and NooBaa's never.
    /// </summary>
    /// <param name="bucketHost">The claim's BUCKET_HOST; null when not known yet (a dry run before the claim exists).</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<Uri?> FindS3EndpointAsync(ClusterSession session, BucketClaimOptions options, string? bucketHost, bool required, CancellationToken cancellationToken)
    {
        var route = new ClusterObjectRef(ClusterResource.Routes, options.S3RouteNamespace, options.S3RouteName);
        var found = await ClusterObjects.GetAsync(session, route, cancellationToken).ConfigureAwait(false);
        var service = ServiceOf(bucketHost);
        var leadsTo = ClusterObjects.String(found, "spec", "to", "name");
        if (service is not null && found is not null && leadsTo is not null && leadsTo != service.Value.Name)
        {
            // Another service's bucket: find the route that leads to it.
            var routes = await ClusterErrors.CallAsync(session, "list", new ClusterObjectRef(ClusterResource.Routes, service.Value.Namespace, "*"),
                ct => session.Api.CustomObjects.ListNamespacedCustomObjectAsync(ClusterResource.Routes.Group, ClusterResource.Routes.Version, service.Value.Namespace,
                    ClusterResource.Routes.Plural, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            var own = (ClusterObjects.ToJson(routes)["items"] as JsonArray ?? [])
                .FirstOrDefault(r => ClusterObjects.String(r, "spec", "to", "name") == service.Value.Name && HostOf(r) is not null);
            if (own is not null)
            {
                session.Log.Info($"The bucket is served by service \"{service.Value.Name}\" (the claim's BUCKET_HOST {bucketHost}), reached through its route " +
                    $"\"{ClusterObjects.String(own, "metadata", "name")}\" rather than {route}, which leads to \"{leadsTo}\".");
                return new Uri($"https://{HostOf(own)}");
            }
            throw new VddkException(ErrorCodes.S3EndpointNotFound,
                $"The external S3 endpoint cannot be found: the claim's bucket is served by service \"{service.Value.Name}\" in namespace \"{service.Value.Namespace}\" " +
                $"(BUCKET_HOST {bucketHost}), and no route leads to it; {route} leads to service \"{leadsTo}\", which holds neither this bucket nor its keys. " +
                "Set VddkS3Endpoint to the S3 URL of that service reachable from this machine and the registry (https://host), or expose the service with a route.",
                route.ToString());
        }
        var host = HostOf(found);
        if (host is not null)
        {
            return new Uri($"https://{host}");
        }
        if (!required)
        {
            return null;
        }
        throw new VddkException(ErrorCodes.S3EndpointNotFound,
            $"The external S3 endpoint cannot be found: {route} {(found is null ? "does not exist" : "has no host")}. " +
            "Set VddkS3Endpoint to the S3 URL reachable from this machine (https://host).", route.ToString());
    }

    /// <summary>A route's host: <c>spec.host</c>, else the first host the routers admitted.</summary>
    private static string? HostOf(JsonNode? route) =>
        ClusterObjects.String(route, "spec", "host") ?? ClusterObjects.String((route?["status"]?["ingress"] as JsonArray)?.FirstOrDefault(), "host");

    /// <summary>The in-cluster service of <c>name.namespace.svc[.cluster.local]</c>; null for any other host.</summary>
    private static (string Name, string Namespace)? ServiceOf(string? host)
    {
        var parts = host?.Trim().TrimEnd('.').Split('.');
        return parts is { Length: >= 3 } && parts[2] == "svc" && parts[0].Length > 0 && parts[1].Length > 0 ? (parts[0], parts[1]) : null;
    }
}
