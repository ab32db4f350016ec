namespace VddkBuild.Registry;

/// <summary>
/// What a request needs from auth: the token scopes (<c>repository:&lt;name&gt;:pull,push</c>, plus
/// <c>repository:&lt;from&gt;:pull</c> for a cross-repository mount) and whose credentials to use.
/// Travels in <see cref="HttpRequestMessage.Options"/>.
/// </summary>
public sealed record RegistryRequestContext(IReadOnlyList<string> Scopes, RegistryPurpose Purpose)
{
    internal static readonly HttpRequestOptionsKey<RegistryRequestContext> Key = new("VddkBuild.RegistryRequestContext");

    public static RegistryRequestContext Pull(string repository) => new([PullScope(repository)], RegistryPurpose.Pull);

    public static RegistryRequestContext Push(string repository) => new([PushScope(repository)], RegistryPurpose.Push);

    public static RegistryRequestContext Mount(string repository, string from) => new([PushScope(repository), PullScope(from)], RegistryPurpose.Push);

    /// <summary>The repository the request is for (that of the first scope), for messages.</summary>
    public string? Repository => Scopes.Count > 0 && Scopes[0].Split(':') is [_, var name, _] ? name : null;

    public static string PullScope(string repository) => $"repository:{repository}:pull";

    public static string PushScope(string repository) => $"repository:{repository}:pull,push";

    /// <summary>For messages: the scopes as a reader understands them.</summary>
    public string Describe() => string.Join(" and ", Scopes.Select(s =>
    {
        var parts = s.Split(':');
        return parts.Length == 3 ? $"{parts[2].Replace(",", "+", StringComparison.Ordinal)} on repository '{parts[1]}'" : s;
    }));
}
