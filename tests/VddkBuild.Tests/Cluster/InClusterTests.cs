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
        Assert.Contains(_cluster.Log.Lines, l => l.Contains("registry service image-registry.openshift-image-registry.svc:5000", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_VddkServiceAccount_the_pod_pushes_as_its_own_service_account_with_its_rotating_token_and_mints_none()
    {
        // A pipeline's account rarely may create tokens for another account.
        _cluster.Server.Forbid(new KubeForbiddenRule("create", KubeResources.ServiceAccounts) { Subresource = "token", User = PodAccount });
        using var connection = ClusterConnection.Open(null, null, _environment.GetValueOrDefault, _directory);
        var session = new ClusterSession(connection, _cluster.Log);

        var access = await ClusterRegistryAccess.OpenAsync(session, "openshift-mtv/vddk", null, CancellationToken.None);

        Assert.Equal(PodAccount, access.Account);
        Assert.DoesNotContain(_cluster.Server.Requests, r => r.Subresource == "token");
        var first = await access.Credentials.GetCredentialAsync(RegistryRoute.InternalHost, VddkBuild.Registry.RegistryPurpose.Push, CancellationToken.None);
        Assert.Equal(File.ReadAllText(Path.Combine(_directory, "token")), first!.Secret);
        Assert.Null(await access.Credentials.GetCredentialAsync("elsewhere.example.com", VddkBuild.Registry.RegistryPurpose.Push, CancellationToken.None));
        // The kubelet rotates the file: the registry's refusal of the old token gets the new one.
        var rotated = _cluster.Server.Tokens.Issue("openshift-mtv", "vddk-publisher", TimeSpan.FromHours(1), ["https://kubernetes.default.svc"]).Token;
        File.WriteAllText(Path.Combine(_directory, "token"), rotated);
        Assert.Equal(rotated, (await access.Credentials.RefreshAsync(RegistryRoute.InternalHost, VddkBuild.Registry.RegistryPurpose.Push, first!, CancellationToken.None))!.Secret);
        Assert.Contains(_cluster.Log.Lines, l => l.Contains($"as {PodAccount}", StringComparison.Ordinal));
        Assert.Contains("-z vddk-publisher -n openshift-mtv", access.ExplainDenied(new VddkException(ErrorCodes.RegistryDenied, "denied"), "openshift-mtv/vddk").Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_VddkServiceAccount_the_pod_requests_a_token_for_that_account()
    {
        using var connection = ClusterConnection.Open(null, null, _environment.GetValueOrDefault, _directory);
        var session = new ClusterSession(connection, _cluster.Log);

        var access = await ClusterRegistryAccess.OpenAsync(session, "openshift-mtv/vddk", "builder", CancellationToken.None);

        Assert.Equal("system:serviceaccount:openshift-mtv:builder", access.Account);
        Assert.Contains(_cluster.Server.Requests, r => r.User == PodAccount && r.Subresource == "token" && r.Name == "builder" && r.StatusCode == 201);
        var credential = await access.Credentials.GetCredentialAsync(RegistryRoute.InternalHost, VddkBuild.Registry.RegistryPurpose.Push, CancellationToken.None);
        Assert.NotEqual(File.ReadAllText(Path.Combine(_directory, "token")), credential!.Secret);
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
