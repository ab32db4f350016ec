namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// A request path of the Kubernetes REST tree taken apart: <c>/api/v1/namespaces/{ns}/secrets/{name}</c>,
/// <c>/apis/{group}/{version}/{plural}/{name}/status</c>, <c>/api/v1/namespaces/{ns}/serviceaccounts/{name}/token</c>.
/// </summary>
public sealed record KubeApiRoute(KubeResource Resource, string? Namespace, string? Name, string? Subresource)
{
    public static KubeApiRoute? Parse(string path) => Parse(path, KubeResources.All);

    public static KubeApiRoute? Parse(string path, IReadOnlyList<KubeResource> known)
    {
        var segments = path.Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        string group, version;
        ArraySegment<string> rest;
        if (segments.Length >= 3 && segments[0] == "api")
        {
            (group, version, rest) = ("", segments[1], segments[2..]);
        }
        else if (segments.Length >= 4 && segments[0] == "apis")
        {
            (group, version, rest) = (segments[1], segments[2], segments[3..]);
        }
        else
        {
            return null;
        }
        KubeResource? Find(string plural) => known.FirstOrDefault(r => r.Group == group && r.Version == version && r.Plural == plural);

        string? ns = null;
        if (rest.Count >= 3 && rest[0] == "namespaces" && Find(rest[2]) is { Namespaced: true })
        {
            ns = rest[1];
            rest = rest[2..];
        }
        var resource = Find(rest[0]);
        if (resource is null || rest.Count > 3)
        {
            return null;
        }
        var name = rest.Count > 1 ? rest[1] : null;
        var subresource = rest.Count > 2 ? rest[2] : null;
        if (resource.Namespaced && ns is null && name is not null)
        {
            return null;
        }
        return new KubeApiRoute(resource, ns, name, subresource);
    }

    /// <summary>The authorization verb of an HTTP method on this route.</summary>
    public string Verb(string method, bool watch) => method switch
    {
        "GET" when Name is null => watch ? "watch" : "list",
        "GET" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" when Name is null => "deletecollection",
        "DELETE" => "delete",
        _ => method.ToLowerInvariant(),
    };
}
