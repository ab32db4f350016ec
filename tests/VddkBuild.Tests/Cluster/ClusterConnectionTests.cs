using System.Net;
using System.Text.Json.Nodes;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

public sealed class ClusterConnectionTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task An_explicit_kubeconfig_and_context_reach_the_cluster_over_verified_tls()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vddk-kc-{Guid.NewGuid():N}");
        _cluster.Server.WriteKubeconfig(path, _cluster.Server.AdminToken, contextName: "prod", defaultNamespace: "openshift-mtv");
        try
        {
            using var connection = ClusterConnection.Open(path, "prod");
            var session = new ClusterSession(connection, _cluster.Log);

            await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);

            Assert.Equal("openshift-mtv", connection.Namespace);
            Assert.NotNull(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_missing_kubeconfig_or_context_is_a_configuration_error()
    {
        var missingFile = Assert.Throws<VddkException>(() => ClusterConnection.Open("/nonexistent/kubeconfig"));
        var missingContext = Assert.Throws<VddkException>(() => ClusterConnection.Open(_cluster.Server.KubeconfigPath, "no-such-context"));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, missingFile.Code);
        Assert.Contains("VddkKubeconfig", missingFile.Message);
        Assert.Equal(ErrorCodes.ClusterConfigInvalid, missingContext.Code);
        Assert.Contains("no-such-context", missingContext.Message);
    }

    [Fact]
    public async Task A_server_certificate_from_another_ca_is_refused_with_a_tls_error()
    {
        using var other = LoopbackCertificates.Create("Some other CA");
        var text = File.ReadAllText(_cluster.Server.KubeconfigPath);
        var ca = Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(_cluster.Server.Certificates.AuthorityPem));
        var path = Path.Combine(Path.GetTempPath(), $"vddk-kc-{Guid.NewGuid():N}");
        File.WriteAllText(path, text.Replace(ca, Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(other.AuthorityPem))));
        try
        {
            using var connection = ClusterConnection.Open(path);
            var session = new ClusterSession(connection, _cluster.Log);

            var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRoute.DiscoverHostAsync(session, CancellationToken.None));

            Assert.Equal(ErrorCodes.ClusterUnreachable, error.Code);
            Assert.Contains("routes.route.openshift.io \"default-route\"", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task An_expired_or_unknown_token_is_reported_as_unauthorized()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vddk-kc-{Guid.NewGuid():N}");
        _cluster.Server.WriteKubeconfig(path, "sha256~expired");
        try
        {
            using var connection = ClusterConnection.Open(path);

            var error = await Assert.ThrowsAsync<VddkException>(() => IngressCaStep.ReadAsync(new ClusterSession(connection, _cluster.Log), CancellationToken.None));

            Assert.Equal(ErrorCodes.ClusterUnauthorized, error.Code);
            Assert.Contains("oc login", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_client_certificate_kubeconfig_as_the_installer_writes_it_authenticates_as_its_user(bool filesBesideTheKubeconfig)
    {
        var directory = Directory.CreateTempSubdirectory("vddk-kc-").FullName;
        try
        {
            var path = _cluster.Server.WriteClientCertificateKubeconfig(Path.Combine(directory, "kubeconfig"), "system:admin");
            if (filesBesideTheKubeconfig)
            {
                // client-certificate / client-key paths, relative to the kubeconfig as kubectl reads them.
                var text = File.ReadAllText(path);
                string Field(string name) => text.Split('\n').Single(l => l.TrimStart().StartsWith(name + ":", StringComparison.Ordinal)).Split(':', 2)[1].Trim();
                File.WriteAllBytes(Path.Combine(directory, "admin.crt"), Convert.FromBase64String(Field("client-certificate-data")));
                File.WriteAllBytes(Path.Combine(directory, "admin.key"), Convert.FromBase64String(Field("client-key-data")));
                File.WriteAllText(path, text
                    .Replace("client-certificate-data: " + Field("client-certificate-data"), "client-certificate: admin.crt", StringComparison.Ordinal)
                    .Replace("client-key-data: " + Field("client-key-data"), "client-key: admin.key", StringComparison.Ordinal));
            }
            using var connection = ClusterConnection.Open(path);
            var session = new ClusterSession(connection, _cluster.Log);

            await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);

            Assert.NotNull(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
            Assert.All(_cluster.Server.Requests, r => Assert.Equal("system:admin", r.User));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task A_ca_bundle_of_several_signers_verifies_a_server_signed_by_any_one_of_them_as_the_installers_kubeconfig_holds()
    {
        // The installer's kubeconfig trusts several signers (localhost, service network, load balancer); the one that
        // signed the serving certificate need not be first.
        using var lbSigner = LoopbackCertificates.Create("kube-apiserver-lb-signer");
        using var localhostSigner = LoopbackCertificates.Create("kube-apiserver-localhost-signer");
        var bundle = Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(string.Join("\n", lbSigner.AuthorityPem, localhostSigner.AuthorityPem, _cluster.Server.Certificates.AuthorityPem) + "\n"));

        await WritesTheRegistryCredentialsThroughAnEditedKubeconfigAsync(ca => (ca, bundle));
    }

    [Fact]
    public Task Insecure_skip_tls_verify_reaches_an_api_server_whose_ca_is_not_given_as_kubectl_does() =>
        WritesTheRegistryCredentialsThroughAnEditedKubeconfigAsync(ca => ($"certificate-authority-data: {ca}", "insecure-skip-tls-verify: true"));

    /// <summary>The loopback server's kubeconfig with one replacement (given its CA's base64) is used for a write that must arrive.</summary>
    private async Task WritesTheRegistryCredentialsThroughAnEditedKubeconfigAsync(Func<string, (string Find, string Replace)> edit)
    {
        var text = File.ReadAllText(_cluster.Server.KubeconfigPath);
        var (find, replace) = edit(Convert.ToBase64String(System.Text.Encoding.ASCII.GetBytes(_cluster.Server.Certificates.AuthorityPem)));
        Assert.Contains(find, text, StringComparison.Ordinal);
        var path = Path.Combine(Path.GetTempPath(), $"vddk-kc-{Guid.NewGuid():N}");
        File.WriteAllText(path, text.Replace(find, replace, StringComparison.Ordinal));
        try
        {
            using var connection = ClusterConnection.Open(path);
            var session = new ClusterSession(connection, _cluster.Log);

            await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);

            Assert.NotNull(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Warnings_the_api_server_sends_are_logged_once_each_as_kubectl_shows_them()
    {
        const string Deprecated = "objectbucket.io/v1alpha1 ObjectBucketClaim is deprecated; use \"objectbucket.io/v1\"";
        _cluster.Server.WarnOn("get", KubeResources.Secrets, Deprecated);
        _cluster.Server.WarnOn("create", KubeResources.Secrets, "metadata.name: this is used in Pod names and hostnames");
        using var connection = ClusterConnection.Open(_cluster.Server.KubeconfigPath);
        var session = new ClusterSession(connection, _cluster.Log);

        await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);
        await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);

        Assert.Single(_cluster.Log.Lines, l => l == $"Warning from the API server {_cluster.Server.BaseUri.ToString().TrimEnd('/')}: {Deprecated}");
        Assert.Single(_cluster.Log.Lines, l => l.EndsWith(": metadata.name: this is used in Pod names and hostnames", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_429_or_5xx_with_Retry_After_is_sent_again_after_that_wait_reads_and_writes_alike_as_client_go_does()
    {
        // kube-apiserver's priority and fairness sheds load with 429 + Retry-After; client-go waits and sends again.
        const string Shed = "Too many requests, please try again later.";
        _cluster.Store.Create(KubeResources.Routes, "openshift-image-registry", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "default-route" },
            ["spec"] = new JsonObject { ["host"] = "default-route-openshift-image-registry.apps.example.com" },
        });
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.TooManyRequests, Times: 2) { Verb = "get", Resource = KubeResources.Routes, Message = Shed, RetryAfterSeconds = 1 });
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.TooManyRequests) { Verb = "create", Resource = KubeResources.Secrets, Message = Shed, RetryAfterSeconds = 1 });
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.ServiceUnavailable) { Verb = "get", Resource = KubeResources.Secrets, RetryAfterSeconds = 1 });
        using var connection = ClusterConnection.Open(_cluster.Server.KubeconfigPath);
        var session = new ClusterSession(connection, _cluster.Log);

        var host = await RegistryRoute.DiscoverHostAsync(session, CancellationToken.None);
        await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);

        Assert.Equal("default-route-openshift-image-registry.apps.example.com", host);
        Assert.Equal([429, 429, 200], _cluster.Server.Requests.Where(r => r.Resource == KubeResources.Routes).Select(r => r.StatusCode));
        Assert.Equal([503, 404, 429, 201], _cluster.Server.Requests.Where(r => r.Resource == KubeResources.Secrets).Select(r => r.StatusCode));
        Assert.NotNull(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
    }

    [Fact]
    public async Task A_429_that_does_not_end_fails_after_the_retries_saying_the_api_server_is_overloaded_and_one_without_Retry_After_is_not_repeated()
    {
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.TooManyRequests, Times: 1000) { Verb = "get", Resource = KubeResources.Routes, Message = "Too many requests, please try again later.", RetryAfterSeconds = 0 });
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.InternalServerError) { Verb = "get", Resource = KubeResources.ConfigMaps, Message = "etcdserver: request timed out" });
        using var connection = ClusterConnection.Open(_cluster.Server.KubeconfigPath);
        var session = new ClusterSession(connection, _cluster.Log);

        var throttled = await Assert.ThrowsAsync<VddkException>(() => RegistryRoute.DiscoverHostAsync(session, CancellationToken.None));
        var failed = await Assert.ThrowsAsync<VddkException>(() => IngressCaStep.ReadAsync(session, CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterRequestFailed, throttled.Code);
        Assert.Contains("429", throttled.Message);
        Assert.Contains("overloaded", throttled.Message);
        Assert.Contains("11 attempts", throttled.Message);
        Assert.Equal(11, _cluster.Server.Requests.Count(r => r.Resource == KubeResources.Routes));
        Assert.Equal(ErrorCodes.ClusterRequestFailed, failed.Code);
        Assert.Contains("etcdserver: request timed out", failed.Message);
        Assert.Single(_cluster.Server.Requests, r => r.Resource == KubeResources.ConfigMaps);
    }
}

public sealed class MergePatchDiffTests
{
    [Fact]
    public void Reports_leaf_changes_deletions_and_nothing_for_an_equal_object()
    {
        var current = JsonNode.Parse("""{"spec":{"replicas":2,"storage":{"emptyDir":{},"s3":{"bucket":"a"}}}}""")!;
        var patch = JsonNode.Parse("""{"spec":{"replicas":2,"storage":{"emptyDir":null,"pvc":null,"s3":{"bucket":"b","region":"us-east-1"}}}}""")!.AsObject();

        var diff = MergePatchDiff.Compare(current, patch).Select(d => $"{d.Path}:{MergePatchDiff.Render(d.Old)}->{MergePatchDiff.Render(d.New)}");

        Assert.Equal(["spec.storage.emptyDir:{}->", "spec.storage.s3.bucket:a->b", "spec.storage.s3.region:->us-east-1"], diff);
        Assert.Empty(MergePatchDiff.Compare(JsonNode.Parse("""{"spec":{"replicas":2,"x":true}}"""), JsonNode.Parse("""{"spec":{"replicas":2,"pvc":null}}""")!.AsObject()));
    }
}

public sealed class ClusterErrorsTests
{
    [Fact]
    public void The_authorizers_message_becomes_the_missing_permission()
    {
        var target = new ClusterObjectRef(ClusterResource.Secrets, "ns", "s");

        var namespaced = ClusterErrors.DescribeMissingPermission(
            "secrets \"s\" is forbidden: User \"system:serviceaccount:ci:deployer\" cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\"", "get", target);
        var unknown = ClusterErrors.DescribeMissingPermission("access denied by policy", "get", target);

        Assert.Equal("user \"system:serviceaccount:ci:deployer\" lacks the permission 'get' on resource \"secrets\" in API group \"\" in namespace \"ns\".", namespaced);
        Assert.Equal("the permission 'get' on resource \"secrets\" in API group \"\" in namespace \"ns\" is missing.", unknown);
    }

    [Fact]
    public void The_escalation_checks_message_becomes_the_role_the_user_may_not_grant()
    {
        var target = new ClusterObjectRef(ClusterResource.RoleBindings, "ns", "b");

        var described = ClusterErrors.DescribeMissingPermission(
            "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"dev\" (groups=[\"system:authenticated:oauth\" \"system:authenticated\"]) " +
            "is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}", "create", target);

        Assert.Equal("user \"dev\" may not grant the role this RoleBinding refers to: binding a role needs 'bind' on that role, or holding every permission " +
            "it grants (not held: {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}).", described);
    }
}
