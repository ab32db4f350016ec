using System.Text.Json.Nodes;

namespace VddkBuild.Cluster;

/// <summary>
/// What an RFC 7386 merge patch would change on an object, field by field. Steps describe their desired state as a
/// merge patch; an empty difference means the object is already right and nothing is written (idempotence), and the
/// differences are the dry-run plan.
/// </summary>
public static class MergePatchDiff
{
    /// <summary>Leaf-level differences, with dotted paths (<c>spec.storage.s3.bucket</c>). <paramref name="current"/> null: a new object.</summary>
    public static IReadOnlyList<(string Path, JsonNode? Old, JsonNode? New)> Compare(JsonNode? current, JsonObject patch)
    {
        var result = new List<(string, JsonNode?, JsonNode?)>();
        Walk(current as JsonObject, patch, "", result);
        return result;
    }

    /// <summary>The differences as plan entries; <paramref name="secretPaths"/> are shown as <see cref="ClusterChange.Redacted"/>.</summary>
    public static IReadOnlyList<ClusterChange> Changes(ClusterObjectRef target, JsonNode? current, JsonObject patch, Func<string, bool>? secretPaths = null) =>
        Compare(current, patch)
            .Select(d => secretPaths?.Invoke(d.Path) == true
                ? new ClusterChange(target, d.Path, d.Old is null ? null : ClusterChange.Redacted, d.New is null ? null : ClusterChange.Redacted)
                : new ClusterChange(target, d.Path, Render(d.Old), Render(d.New)))
            .ToList();

    public static string? Render(JsonNode? value) => value switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => v.GetValue<string>(),
        _ => value.ToJsonString(),
    };

    private static void Walk(JsonObject? current, JsonObject patch, string prefix, List<(string, JsonNode?, JsonNode?)> result)
    {
        foreach (var (key, desired) in patch)
        {
            var path = prefix.Length == 0 ? key : $"{prefix}.{key}";
            JsonNode? existing = null;
            current?.TryGetPropertyValue(key, out existing);
            if (desired is null)
            {
                if (existing is not null)
                {
                    result.Add((path, existing.DeepClone(), null));
                }
                continue;
            }
            if (desired is JsonObject desiredObject)
            {
                if (existing is JsonObject existingObject)
                {
                    Walk(existingObject, desiredObject, path, result);
                    continue;
                }
                if (existing is not null || desiredObject.Count == 0 || !HasLeaves(desiredObject))
                {
                    result.Add((path, existing?.DeepClone(), StripNulls(desiredObject)));
                    continue;
                }
                Walk(null, desiredObject, path, result);
                continue;
            }
            if (!JsonNode.DeepEquals(existing, desired))
            {
                result.Add((path, existing?.DeepClone(), desired.DeepClone()));
            }
        }
    }

    private static bool HasLeaves(JsonObject obj) => obj.Any(p => p.Value is not null && (p.Value is not JsonObject inner || inner.Count == 0 || HasLeaves(inner)));

    private static JsonObject StripNulls(JsonObject obj)
    {
        var copy = new JsonObject();
        foreach (var (key, value) in obj)
        {
            if (value is not null)
            {
                copy[key] = value is JsonObject inner ? StripNulls(inner) : value.DeepClone();
            }
        }
        return copy;
    }
}
