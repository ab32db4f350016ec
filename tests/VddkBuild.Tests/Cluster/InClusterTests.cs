using System.Security.Cryptography.X509Certificates;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

/// <summary>
/// A CI job in a pod of the cluster (Tekton, Jenkins): no kubeconfig, the pod's service account files and
/// KUBERNETES_SERVICE_HOST/PORT. The files live in a folder of the test's own instead of /var/run/secrets.
/// </summary>
public sealed class InClusterTests : IAsyncLifetime
{
    private const string PodAccount = "system:serviceaccount:openshift-mtv:vddk-publisher";
    private readonly ClusterTestContext _cluster = new();
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"vddk-sa-{Guid.NewGuid():N}");
    private readonly LoopbackCertificates _serviceCa = LoopbackCertificates.Create("openshift-service-serving-signer");
    private Dictionary<string, string> _environment = [];

    public async Task InitializeAsync()
    {
        await _cluster.InitializeAsync();
        _cluster.Seed(KubeResources.ServiceAccounts, "openshift-mtv", "builder");
        Directory.CreateDirectory(_directory);
        var token = _cluster.Server.Tokens.Issue("openshift-mtv", "vddk-publisher", TimeSpan.FromHours(1), ["https://kubernetes.default.svc"]);
        File.WriteAllText(Path.Combine(_directory, "token"), token.Token);
        File.WriteAllText(Path.Combine(_directory, "ca.crt"), _cluster.Server.Certificates.AuthorityPem);
        File.WriteAllText(Path.Combine(_directory, "namespace"), "openshift-mtv");
        File.WriteAllText(Path.Combine(_directory, "service-ca.crt"), _serviceCa.AuthorityPem);
        var home = Path.Combine(_directory, "home");
        Directory.CreateDirectory(home);
        _environment = new()
        {
            ["KUBERNETES_SERVICE_HOST"] = _cluster.Server.BaseUri.Host,
            ["KUBERNETES_SERVICE_PORT"] = _cluster.Server.BaseUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["HOME"] = home,
        };
    }

    public async Task DisposeAsync()
    {
        _serviceCa.Dispose();
        Directory.Delete(_directory, recursive: true);
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task Pushes_to_the_registry_service_trusting_the_pods_service_ca_without_reading_the_route_or_ingress()
    {
        // A pipeline's account may read neither the route nor the ingress CA (and the route may not resolve from inside).
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.Routes) { User = PodAccount });
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.ConfigMaps) { User = PodAccount });
        using var connection = ClusterConnection.Open(null, null, _environment.GetValueOrDefault, _directory);
        var session = new ClusterSession(connection, _cluster.Log);

        var access = await ClusterRegistryAccess.OpenAsync(session, "openshift-mtv/vddk", null, CancellationToken.None);

        Assert.NotNull(connection.InCluster);
        Assert.Equal("openshift-mtv", connection.Namespace);
        Assert.Equal(RegistryRoute.InternalHost, access.Registry);
        Assert.Equal([_serviceCa.Authority.Thumbprint], access.TrustedCertificates.Select(c => c.Thumbprint));
        var requests = _cluster.Server.Requests;
        Assert.DoesNotContain(requests, r => r.Resource == KubeResources.Routes || r.Resource == KubeResources.ConfigMaps);
        Assert.Contains(requests, r => r.User == PodAccount && r.Subresource == "token" && r.Name == "builder" && r.StatusCode == 201);
        Assert.Contains(_cluster.Log.Lines, l => l.Contains("registry service image-registry.openshift-image-registry.svc:5000", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_the_service_account_files_it_is_not_a_pod()
    {
        File.Delete(Path.Combine(_directory, "token"));

        var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(null, null, _environment.GetValueOrDefault, _directory));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Null(InClusterServiceAccount.Detect(_environment.GetValueOrDefault, _directory));
    }
}
