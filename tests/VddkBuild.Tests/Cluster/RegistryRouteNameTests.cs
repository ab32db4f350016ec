using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

/// <summary>Which registry names are the cluster's own registry, so PublishVddk knows which reference Forklift needs.</summary>
public sealed class RegistryRouteNameTests
{
    [Theory]
    [InlineData("image-registry.openshift-image-registry.svc:5000")]
    [InlineData("image-registry.openshift-image-registry.svc.cluster.local:5000")]
    [InlineData("default-route-openshift-image-registry.apps.example.com")]
    [InlineData("Default-Route-OpenShift-Image-Registry.apps.ocp.example.org:443")]
    public void The_registry_service_and_its_default_route_are_the_cluster_registry(string registry) =>
        Assert.True(RegistryRoute.NamesClusterRegistry(registry));

    [Theory]
    [InlineData("quay.example.com")]
    [InlineData("harbor.example.com:8443")]
    [InlineData("127.0.0.1:5000")]
    [InlineData("image-registry.openshift-image-registry.svc")]
    [InlineData("default-route-openshift-image-registry")]
    [InlineData("my-default-route-openshift-image-registry.apps.example.com")]
    public void Other_registries_are_not(string registry) =>
        Assert.False(RegistryRoute.NamesClusterRegistry(registry));
}

/// <summary>A registry named by a custom route is the cluster's own only if the cluster says so.</summary>
public sealed class RegistryRouteLookupTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Theory]
    [InlineData("registry.apps.example.com")]
    [InlineData("registry.apps.example.com:443")]
    [InlineData("REGISTRY.apps.example.com")]
    [InlineData("registry-custom.example.org")]
    [InlineData("default-route-openshift-image-registry.apps.example.com")] // by its name alone
    public async Task The_default_route_host_and_the_published_route_hosts_are_the_cluster_registry(string registry)
    {
        _cluster.Seed(KubeResources.Routes, "openshift-image-registry", "default-route",
            new System.Text.Json.Nodes.JsonObject { ["spec"] = new System.Text.Json.Nodes.JsonObject { ["host"] = "registry.apps.example.com" } });
        _cluster.Seed(KubeResources.ImageConfigs, null, "cluster", new System.Text.Json.Nodes.JsonObject
        {
            ["status"] = new System.Text.Json.Nodes.JsonObject { ["externalRegistryHostnames"] = new System.Text.Json.Nodes.JsonArray("registry-custom.example.org") },
        });

        var (matches, unreadable) = await RegistryRoute.IsClusterRegistryAsync(_cluster.Session(), registry, CancellationToken.None);

        Assert.True(matches);
        Assert.Null(unreadable);
    }

    [Theory]
    [InlineData("quay.example.com")]
    [InlineData("registry.apps.example.com:8443")]
    [InlineData("apps.example.com")]
    public async Task Other_hosts_are_not(string registry)
    {
        _cluster.Seed(KubeResources.Routes, "openshift-image-registry", "default-route",
            new System.Text.Json.Nodes.JsonObject { ["spec"] = new System.Text.Json.Nodes.JsonObject { ["host"] = "registry.apps.example.com" } });

        var (matches, _) = await RegistryRoute.IsClusterRegistryAsync(_cluster.Session(), registry, CancellationToken.None);

        Assert.False(matches);
    }
}
