using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Custom resources (OBCs, routes, the registry config, cluster operators, providers...) read and written as JSON,
/// so merge patches keep their explicit nulls and no field the project does not model is lost.
/// </summary>
internal static class ClusterObjects
{
    public static Task<JsonObject?> GetAsync(ClusterSession session, ClusterObjectRef target, CancellationToken cancellationToken) =>
        ClusterErrors.GetOrNullAsync(session, target, ct => FetchAsync(session, target, ct), cancellationToken);

    /// <summary>As <see cref="GetAsync"/>, but a 403 is returned as the refusal instead of thrown.</summary>
    public static Task<ClusterRead<JsonObject>> GetOrRefusedAsync(ClusterSession session, ClusterObjectRef target, CancellationToken cancellationToken) =>
        ClusterErrors.GetOrRefusedAsync(session, target, ct => FetchAsync(session, target, ct), cancellationToken);

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<JsonObject> FetchAsync(ClusterSession session, ClusterObjectRef target, CancellationToken cancellationToken)
    {
        var r = target.Resource;
        var result = r.Namespaced
            ? await session.Api.CustomObjects.GetNamespacedCustomObjectAsync(r.Group, r.Version, target.Namespace!, r.Plural, target.Name, cancellationToken).ConfigureAwait(false)
            : await session.Api.CustomObjects.GetClusterCustomObjectAsync(r.Group, r.Version, r.Plural, target.Name, cancellationToken).ConfigureAwait(false);
        return ToJson(result);
    }

    public static Task<JsonObject> CreateAsync(ClusterSession session, ClusterObjectRef target, JsonObject body, CancellationToken cancellationToken) =>
        ClusterErrors.CallAsync(session, "create", target, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<JsonObject> (ct) =>
        {
            var r = target.Resource;
            body["apiVersion"] = $"{r.Group}/{r.Version}";
            body["kind"] = r.Kind;
            var metadata = body["metadata"] as JsonObject ?? new JsonObject();
            metadata["name"] = target.Name;
            if (target.Namespace is not null)
            {
                metadata["namespace"] = target.Namespace;
            }
            body["metadata"] = metadata;
            var result = r.Namespaced
                ? await session.Api.CustomObjects.CreateNamespacedCustomObjectAsync(body, r.Group, r.Version, target.Namespace!, r.Plural, cancellationToken: ct).ConfigureAwait(false)
                : await session.Api.CustomObjects.CreateClusterCustomObjectAsync(body, r.Group, r.Version, r.Plural, cancellationToken: ct).ConfigureAwait(false);
            return ToJson(result);
        }, cancellationToken);

    /// <summary>Sends <paramref name="patch"/> as raw JSON (explicit nulls delete fields).</summary>
    public static Task<JsonObject> MergePatchAsync(ClusterSession session, ClusterObjectRef target, JsonObject patch, CancellationToken cancellationToken) =>
        ClusterErrors.CallAsync(session, "patch", target, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<JsonObject> (ct) =>
        {
            var r = target.Resource;
            var body = new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch);
            var result = r.Namespaced
                ? await session.Api.CustomObjects.PatchNamespacedCustomObjectAsync(body, r.Group, r.Version, target.Namespace!, r.Plural, target.Name, cancellationToken: ct).ConfigureAwait(false)
                : await session.Api.CustomObjects.PatchClusterCustomObjectAsync(body, r.Group, r.Version, r.Plural, target.Name, cancellationToken: ct).ConfigureAwait(false);
            return ToJson(result);
        }, cancellationToken);

    /// <summary>Any KubernetesClient result (JsonElement for custom objects, typed models otherwise) as a JSON object.</summary>
    public static JsonObject ToJson(object? value) => value switch
    {
        JsonObject obj => obj,
        JsonElement element => JsonNode.Parse(element.GetRawText())!.AsObject(),
        null => new JsonObject(),
        _ => JsonNode.Parse(KubernetesJson.Serialize(value))!.AsObject(),
    };

    public static string? String(JsonNode? node, params string[] path)
    {
        foreach (var segment in path)
        {
            node = (node as JsonObject)?[segment];
        }
        return node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;
    }

    public static long? Number(JsonNode? node, params string[] path)
    {
        foreach (var segment in path)
        {
            node = (node as JsonObject)?[segment];
        }
        return node is JsonValue value && value.GetValueKind() == JsonValueKind.Number ? value.GetValue<long>() : null;
    }
}
