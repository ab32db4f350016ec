using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Whether the registry will reach its S3 endpoint through a proxy. The operator gives the registry pods HTTP_PROXY,
/// HTTPS_PROXY and NO_PROXY from the registry config's <c>spec.proxy</c>, each falling back to the cluster Proxy's
/// <c>status</c> (the effective settings, with the cluster's own names and networks). That NO_PROXY has no ingress
/// domain, and Go matches its network ranges against IP addresses only, so the S3 route's host goes to the proxy,
/// which often cannot reach the cluster's own ingress or inspects its TLS: the registry then has no storage and the
/// rollout never finishes. A warning, not an error: some proxies do reach it.
/// </summary>
public static class RegistryEgressProxy
{
    public static readonly ClusterObjectRef ClusterProxy = new(ClusterResource.Proxies, null, "cluster");

    public static readonly ClusterObjectRef IngressConfig = new(ClusterResource.IngressConfigs, null, "cluster");

    /// <param name="registryConfig">configs.imageregistry.operator.openshift.io/cluster as read (its spec.proxy wins).</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public static async Task WarnIfProxiedAsync(ClusterSession session, JsonObject? registryConfig, Uri endpoint, CancellationToken cancellationToken)
    {
        var clusterProxy = await ClusterObjects.GetOrRefusedAsync(session, ClusterProxy, cancellationToken).ConfigureAwait(false);
        if (clusterProxy.Refused is { } refused)
        {
            session.Log.Detail($"Skipped {ClusterProxy} (whether the registry reaches S3 through a proxy): {refused.Permission}");
        }
        string? Setting(string specField, string statusField) =>
            ClusterObjects.String(registryConfig, "spec", "proxy", specField) is { Length: > 0 } own ? own
            : ClusterObjects.String(clusterProxy.Value, "status", statusField) is { Length: > 0 } cluster ? cluster : null;
        var (https, http, noProxy) = (Setting("https", "httpsProxy"), Setting("http", "httpProxy"), Setting("noProxy", "noProxy"));
        var proxy = EnvironmentProxy.FromEnvironment(name => name switch
        {
            "HTTPS_PROXY" => https,
            "HTTP_PROXY" => http,
            "NO_PROXY" => noProxy,
            _ => null,
        });
        if (proxy?.GetProxy(endpoint) is not { } through)
        {
            return;
        }
        // An S3 outside the cluster's ingress (VddkS3Endpoint on another network) is meant to be reached through it.
        var ingress = await ClusterObjects.GetOrRefusedAsync(session, IngressConfig, cancellationToken).ConfigureAwait(false);
        var domain = ClusterObjects.String(ingress.Value, "spec", "domain")?.Trim('.');
        var host = endpoint.IdnHost.TrimEnd('.');
        if (domain is { Length: > 0 } && !host.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase))
        {
            return;
        }
        var suffix = domain is { Length: > 0 } ? "." + domain : host.Contains('.', StringComparison.Ordinal) ? host[host.IndexOf('.', StringComparison.Ordinal)..] : host;
        var source = ClusterObjects.String(registryConfig, "spec", "proxy", "noProxy") is { Length: > 0 } ? $"{RegistryConfigStep.Config} spec.proxy" : $"{ClusterProxy} status";
        session.Log.Warn(ErrorCodes.RegistryS3ThroughProxy,
            $"The registry will reach its S3 endpoint {host} through the proxy {through.GetLeftPart(UriPartial.Authority)}: the operator gives the registry pods " +
            $"HTTPS_PROXY, and their NO_PROXY (from {source}) does not cover that host. A proxy that cannot reach the cluster's " +
            "own ingress, or inspects its TLS, leaves the registry without storage and the rollout waits until it times out. Add the host, or the ingress domain " +
            $"{suffix}, to the cluster proxy's spec.noProxy (one comma-separated string: append to it, oc edit proxy/cluster), or to spec.proxy.noProxy of " +
            $"{RegistryConfigStep.Config}.");
    }
}
