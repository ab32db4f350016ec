using VddkBuild.Cluster;

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
