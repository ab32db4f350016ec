using System.Net;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// A failure the loopback server injects into matching requests, a given number of times. Null match fields match
/// anything. Without a <see cref="Reason"/> the usual one for the status code is used (409 means a resourceVersion
/// conflict).
/// </summary>
public sealed record KubeFault(HttpStatusCode StatusCode, int Times = 1)
{
    public string? Verb { get; init; }
    public KubeResource? Resource { get; init; }
    public string? Name { get; init; }
    public string? Subresource { get; init; }
    public string? Reason { get; init; }
    public string? Message { get; init; }
    /// <summary>Sent as a <c>Retry-After</c> header, as kube-apiserver's priority and fairness sends it with a 429.</summary>
    public int? RetryAfterSeconds { get; init; }
}

/// <summary>A verb a user may not use on a resource; the server answers 403 Forbidden with the real authorizer's message.</summary>
public sealed record KubeForbiddenRule(string Verb, KubeResource Resource)
{
    public string? Subresource { get; init; }
    /// <summary>Null: every namespace (and cluster scope).</summary>
    public string? Namespace { get; init; }
    /// <summary>Null: every user.</summary>
    public string? User { get; init; }
}
