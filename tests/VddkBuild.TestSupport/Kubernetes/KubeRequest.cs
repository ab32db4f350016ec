namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>One API request the loopback server answered, for tests that count or inspect requests.</summary>
public sealed record KubeRequest(
    string Method,
    string Path,
    string Verb,
    KubeResource? Resource,
    string? Namespace,
    string? Name,
    string? Subresource,
    string User,
    int StatusCode)
{
    /// <summary>create, update, patch and delete change the cluster; get and list do not.</summary>
    public bool IsMutating => Verb is "create" or "update" or "patch" or "delete";

    public override string ToString() => $"{Method} {Path} ({Verb}) -> {StatusCode}";
}
