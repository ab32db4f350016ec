using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// RFC 7386 JSON merge patch: objects merge key by key, an explicit <c>null</c> deletes the key, anything else
/// (arrays included) replaces the target value. The API server also applies strategic merge patches this way, which
/// is what they amount to for the maps and scalars the cluster steps patch.
/// </summary>
public static class JsonMergePatch
{
    /// <summary>Returns a new document: <paramref name="target"/> with <paramref name="patch"/> applied. Neither input changes.</summary>
    public static JsonNode? Apply(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }
        var result = target is JsonObject targetObject ? (JsonObject)targetObject.DeepClone() : new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
                continue;
            }
            result.TryGetPropertyValue(key, out var current);
            var merged = Apply(current, value);
            result.Remove(key);
            result[key] = merged;
        }
        return result;
    }
}
