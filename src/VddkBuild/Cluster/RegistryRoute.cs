using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>Where to reach the internal image registry: the default route from outside, the service inside.</summary>
public static class RegistryRoute
{
    /// <summary>The registry's in-cluster name, the reference to give Forklift (pods pull through the service).</summary>
    public const string InternalHost = "image-registry.openshift-image-registry.svc:5000";

    public static readonly ClusterObjectRef DefaultRoute = new(ClusterResource.Routes, "openshift-image-registry", "default-route");

    private static readonly ClusterObjectRef ImageConfig = new(new ClusterResource("config.openshift.io", "v1", "images", "Image", false), null, "cluster");

    /// <summary>The default route's host (<c>default-route-openshift-image-registry.apps.DOMAIN</c>).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<string> DiscoverHostAsync(ClusterSession session, CancellationToken cancellationToken)
    {
        var route = await ClusterObjects.GetAsync(session, DefaultRoute, cancellationToken).ConfigureAwait(false);
        var host = ClusterObjects.String(route, "spec", "host")
            ?? ClusterObjects.String((route?["status"]?["ingress"] as JsonArray)?.FirstOrDefault(), "host");
        if (host is null)
        {
            // The operator also publishes the route's host as the first external registry hostname.
            var images = await ClusterObjects.GetAsync(session, ImageConfig, cancellationToken).ConfigureAwait(false);
            host = (images?["status"]?["externalRegistryHostnames"] as JsonArray)?.FirstOrDefault()?.GetValue<string>();
        }
        if (string.IsNullOrEmpty(host))
        {
            throw new VddkException(ErrorCodes.RegistryRouteNotFound,
                $"The image registry has no default route ({DefaultRoute} does not exist). Run PrepareVddkRegistry (it sets spec.defaultRoute: true), " +
                "or set VddkRegistry to a registry host reachable from this machine.", DefaultRoute.ToString());
        }
        session.Log.Detail($"Image registry route: {host}");
        return host;
    }
}
