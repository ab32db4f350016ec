using System.Net;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>A request the loopback API server refuses; carries the Status body it answers with.</summary>
public sealed class KubeStatusException(JsonObject status)
    : Exception(status["message"]?.GetValue<string>() ?? "request refused")
{
    public JsonObject Status { get; } = status;

    public HttpStatusCode StatusCode => (HttpStatusCode)(Status["code"]?.GetValue<int>() ?? 500);

    public string Reason => Status["reason"]?.GetValue<string>() ?? "";

    /// <summary>A <c>Retry-After</c> header to answer with.</summary>
    public int? RetryAfterSeconds { get; init; }
}
