using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>Where to reach the internal image registry: the default route from outside, the service inside.</summary>
public static class RegistryRoute
{
    /// <summary>The registry's in-cluster name, the reference to give Forklift (pods pull through the service).</summary>
    public const string InternalHost = "image-registry.openshift-image-registry.svc:5000";

    /// <summary>
    /// Whether a registry host is the internal registry's service name, which only pods reach: its certificate is
    /// signed by the service CA, and its credentials are service account tokens.
    /// </summary>
    public static bool NamesClusterRegistryService(string registry) =>
        registry.Equals(InternalHost, StringComparison.OrdinalIgnoreCase)
        || registry.Equals("image-registry.openshift-image-registry.svc.cluster.local:5000", StringComparison.OrdinalIgnoreCase);

    /// <summary>What to do when the service named in VddkRegistry cannot be verified or refuses anonymous access.</summary>
    public static string ServiceHint(string registry) =>
        $"{registry} is the OpenShift registry's service, reached from pods: leave VddkRegistry empty and PublishVddk pushes to it as the pod's own service account (or VddkServiceAccount), trusting the service CA, and gives Forklift the image. " +
        $"To keep VddkRegistry, set VddkRegistryCaBundle={InClusterServiceAccount.DefaultDirectory}/service-ca.crt and pass a service account token in VDDK_REGISTRY_PASSWORD.";

    public static readonly ClusterObjectRef DefaultRoute = new(ClusterResource.Routes, "openshift-image-registry", "default-route");

    /// <summary>
    /// Whether a registry host (<c>host[:port]</c>) is by its name the cluster's internal registry: its service
    /// (<c>image-registry.openshift-image-registry.svc[.cluster.local]:5000</c>) or its default route
    /// (<c>default-route-openshift-image-registry.apps.DOMAIN</c>). A custom route cannot be told from any other registry
    /// by its name.
    /// </summary>
    public static bool NamesClusterRegistry(string registry) =>
        registry.Equals(InternalHost, StringComparison.OrdinalIgnoreCase)
        || registry.Equals("image-registry.openshift-image-registry.svc.cluster.local:5000", StringComparison.OrdinalIgnoreCase)
        || registry.StartsWith("default-route-openshift-image-registry.", StringComparison.OrdinalIgnoreCase);

    private static readonly ClusterObjectRef ImageConfig = new(new ClusterResource("config.openshift.io", "v1", "images", "Image", false), null, "cluster");

    /// <summary>
    /// The default route's host (<c>default-route-openshift-image-registry.apps.DOMAIN</c>); without it, the first
    /// route host the registry operator publishes (<c>images.config.openshift.io/cluster</c>
    /// <c>status.externalRegistryHostnames</c>: the registry's custom <c>spec.routes[]</c> when <c>spec.defaultRoute</c>
    /// is false). The default route is never switched on here: exposing the registry is an administrator's choice.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<string> DiscoverHostAsync(ClusterSession session, CancellationToken cancellationToken)
    {
        var route = await ClusterObjects.GetAsync(session, DefaultRoute, cancellationToken).ConfigureAwait(false);
        var host = RouteHosts(route).FirstOrDefault();
        if (host is not null)
        {
            session.Log.Detail($"Image registry route: {host}");
            return host;
        }
        // A CI account may read the default route and nothing cluster-scoped: a refused read only means "no hint".
        var images = await ClusterObjects.GetOrRefusedAsync(session, ImageConfig, cancellationToken).ConfigureAwait(false);
        host = PublishedHosts(images.Value).FirstOrDefault();
        if (host is not null)
        {
            session.Log.Info($"The image registry has no default route ({DefaultRoute} does not exist); pushing through its route {host}, the first of " +
                $"{ImageConfig} status.externalRegistryHostnames. If that route has a certificate of its own (spec.routes[].secretName), set VddkRegistryCaBundle to its CA.");
            return host;
        }
        var refused = images.Refused is { } r ? $" ({r.Target} could not be read either: {r.Permission.TrimEnd('.')})" : "";
        // Why there is none, when the account may read the registry's config (an administrator's may, a CI account's need not).
        var config = (await ClusterObjects.GetOrRefusedAsync(session, RegistryConfigStep.Config, cancellationToken).ConfigureAwait(false)).Value;
        if (ClusterObjects.String(config, "spec", "managementState") == "Removed")
        {
            throw new VddkException(ErrorCodes.RegistryRouteNotFound,
                $"The image registry has no route to push through: it is not running at all ({RegistryConfigStep.Config} has spec.managementState Removed, " +
                "as installs without shareable storage leave it: bare metal, vSphere, other on-premises platforms). Give it storage and switch it on first: " +
                "PrepareVddkRegistry does both on an OpenShift Data Foundation bucket (or set VddkPrepareRegistry=true), or an administrator configures its " +
                "storage (e.g. a PVC) and sets it Managed; else set VddkRegistry to a registry of your own.", DefaultRoute.ToString());
        }
        if (config?["spec"]?["defaultRoute"] is JsonValue on && on.TryGetValue<bool>(out var enabled) && enabled)
        {
            throw new VddkException(ErrorCodes.RegistryRouteNotFound,
                $"The image registry has no route to push through: {DefaultRoute} does not exist although spec.defaultRoute is already true in " +
                $"{RegistryConfigStep.Config}. The registry operator has not created it (yet): check its conditions with " +
                "'oc get clusteroperator image-registry' and 'oc describe configs.imageregistry.operator.openshift.io cluster', then run the build again; " +
                "or set VddkRegistry to a route of the registry that this machine can reach.", DefaultRoute.ToString());
        }
        throw new VddkException(ErrorCodes.RegistryRouteNotFound,
            $"The image registry has no route to push through: {DefaultRoute} does not exist, and the registry operator publishes no other route host{refused}. " +
            "The default route is off (spec.defaultRoute: false in configs.imageregistry.operator.openshift.io/cluster); exposing the registry is an " +
            "administrator's choice, so this build does not switch it on. Either an administrator enables it: " +
            "oc patch configs.imageregistry.operator.openshift.io/cluster --type merge -p '{\"spec\":{\"defaultRoute\":true}}' " +
            "(PrepareVddkRegistry also does), or set VddkRegistry to a route of the registry that this machine can reach, " +
            "or run the build in a pod of the cluster, where it pushes to the registry's service.",
            DefaultRoute.ToString());
    }

    /// <summary>
    /// Whether <paramref name="registry"/> (<c>host[:port]</c>, as in VddkRegistry) is one of the names the cluster's
    /// own registry answers to: its service, the default route's host, or a host the registry operator publishes
    /// (<c>status.externalRegistryHostnames</c>, <c>status.internalRegistryHostname</c>). A read the account may not
    /// make counts as no match; <paramref name="unreadable"/> names it, so the caller can say why.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<(bool Matches, string? Unreadable)> IsClusterRegistryAsync(ClusterSession session, string registry, CancellationToken cancellationToken)
    {
        if (NamesClusterRegistry(registry))
        {
            return (true, null);
        }
        var route = await ClusterObjects.GetOrRefusedAsync(session, DefaultRoute, cancellationToken).ConfigureAwait(false);
        var images = await ClusterObjects.GetOrRefusedAsync(session, ImageConfig, cancellationToken).ConfigureAwait(false);
        var name = WithoutHttpsPort(registry);
        var matches = RouteHosts(route.Value).Concat(PublishedHosts(images.Value))
            .Append(ClusterObjects.String(images.Value, "status", "internalRegistryHostname"))
            .Any(h => h is not null && WithoutHttpsPort(h).Equals(name, StringComparison.OrdinalIgnoreCase));
        var refused = new[] { route.Refused, images.Refused }.OfType<RefusedRead>().Select(r => r.Target.ToString()).ToList();
        return (matches, refused.Count == 0 ? null : string.Join(" and ", refused));
    }

    /// <summary>The default route's host: <c>spec.host</c>, then what the routers admitted it under.</summary>
    private static IEnumerable<string> RouteHosts(JsonObject? route) =>
        new[] { ClusterObjects.String(route, "spec", "host") }
            .Concat((route?["status"]?["ingress"] as JsonArray ?? []).Select(i => ClusterObjects.String(i, "host")))
            .OfType<string>();

    /// <summary>The route hosts the registry operator publishes (<c>status.externalRegistryHostnames</c>).</summary>
    private static IEnumerable<string> PublishedHosts(JsonObject? images) =>
        (images?["status"]?["externalRegistryHostnames"] as JsonArray ?? [])
            .Select(h => h is JsonValue value && value.TryGetValue<string>(out var name) ? name : null)
            .Where(h => !string.IsNullOrWhiteSpace(h))
            .OfType<string>();

    private static string WithoutHttpsPort(string host) => host.EndsWith(":443", StringComparison.Ordinal) ? host[..^4] : host;
}
