using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

public sealed class RegistryCredentialsStepTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private string Value(string key) => Encoding.UTF8.GetString(Convert.FromBase64String(
        _cluster.Store.GetRequired(KubeResources.Secrets, "openshift-image-registry", "image-registry-private-configuration-user")["data"]![key]!.GetValue<string>()));

    [Fact]
    public async Task Creates_the_secret_then_leaves_it_alone_while_the_keys_are_the_same()
    {
        await RegistryCredentialsStep.RunAsync(_cluster.Session(), new BucketCredentials("AKID1", "secret-1"), CancellationToken.None);
        _cluster.Server.ClearRequestLog();
        await RegistryCredentialsStep.RunAsync(_cluster.Session(), new BucketCredentials("AKID1", "secret-1"), CancellationToken.None);

        Assert.Equal("AKID1", Value("REGISTRY_STORAGE_S3_ACCESSKEY"));
        Assert.Equal("secret-1", Value("REGISTRY_STORAGE_S3_SECRETKEY"));
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task Updates_only_a_changed_key_and_keeps_other_data()
    {
        _cluster.SeedSecret("openshift-image-registry", "image-registry-private-configuration-user",
            ("REGISTRY_STORAGE_S3_ACCESSKEY", "AKID1"), ("REGISTRY_STORAGE_S3_SECRETKEY", "old"), ("OTHER", "kept"));
        var session = _cluster.Session();

        await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("AKID1", "new-secret"), CancellationToken.None);

        Assert.Equal("new-secret", Value("REGISTRY_STORAGE_S3_SECRETKEY"));
        Assert.Equal("kept", Value("OTHER"));
        var change = Assert.Single(session.Changes.Changes);
        Assert.Equal("data.REGISTRY_STORAGE_S3_SECRETKEY", change.Field);
        Assert.Equal(ClusterChange.Redacted, change.NewValue);
    }

    [Fact]
    public async Task Dry_run_shows_redacted_values_and_writes_nothing()
    {
        var session = _cluster.Session(dryRun: true);

        await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("AKID-VISIBLE?", "top-secret"), CancellationToken.None);

        Assert.Empty(_cluster.Server.MutatingRequests);
        Assert.Equal(2, session.Changes.Changes.Count);
        Assert.All(session.Changes.Changes, c => Assert.Equal(ClusterChange.Redacted, c.NewValue));
        Assert.DoesNotContain("top-secret", _cluster.Log.All);
        Assert.DoesNotContain("AKID-VISIBLE?", _cluster.Log.All);
    }
}

public sealed class IngressCaStepTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private string? Bundle() => _cluster.Store.Get(KubeResources.ConfigMaps, "openshift-config", "image-registry-s3-bundle")?["data"]?["ca-bundle.crt"]?.GetValue<string>();

    [Fact]
    public async Task Uses_the_default_ingress_controllers_custom_certificate_and_writes_once()
    {
        using var custom = LoopbackCertificates.Create("Custom ingress CA");
        using var router = LoopbackCertificates.Create("Router default CA");
        _cluster.Seed(KubeResources.IngressControllers, "openshift-ingress-operator", "default",
            new JsonObject { ["spec"] = new JsonObject { ["defaultCertificate"] = new JsonObject { ["name"] = "custom-certs" } } });
        _cluster.SeedSecret("openshift-ingress", "custom-certs", ("tls.crt", custom.ServerChainPem));
        _cluster.SeedSecret("openshift-ingress", "router-certs-default", ("tls.crt", router.ServerChainPem));

        var ca = await IngressCaStep.RunAsync(_cluster.Session(), CancellationToken.None);
        _cluster.Server.ClearRequestLog();
        await IngressCaStep.RunAsync(_cluster.Session(), CancellationToken.None);

        Assert.Contains(ca.Certificates.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>(), c => c.Subject == "CN=Custom ingress CA");
        Assert.DoesNotContain("Router default CA", string.Join(",", ca.Certificates.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>().Select(c => c.Subject)));
        Assert.Equal(ca.Pem, Bundle());
        Assert.Empty(_cluster.Server.MutatingRequests);
        Assert.Empty(_cluster.Log.Warnings);
    }

    [Fact]
    public async Task Falls_back_to_router_certs_default_and_warns_when_no_root_is_in_the_bundle()
    {
        using var router = LoopbackCertificates.Create("Router default CA");
        _cluster.SeedSecret("openshift-ingress", "router-certs-default", ("tls.crt", router.Server.ExportCertificatePem()));

        var ca = await IngressCaStep.RunAsync(_cluster.Session(), CancellationToken.None);

        Assert.Single(ca.Certificates);
        Assert.NotNull(Bundle());
        Assert.Contains(_cluster.Log.Warnings, w => w.Code == ErrorCodes.IngressCaWithoutRoot);
    }

    [Fact]
    public async Task A_ci_account_that_may_not_read_the_ingress_controller_or_its_secret_uses_default_ingress_cert()
    {
        using var ingress = LoopbackCertificates.Create("Ingress operator CA");
        _cluster.SeedSecret("openshift-ingress", "router-certs-default", ("tls.crt", ingress.ServerChainPem), ("tls.key", "router-private-key"));
        _cluster.Seed(KubeResources.ConfigMaps, "openshift-config-managed", "default-ingress-cert",
            new JsonObject { ["data"] = new JsonObject { ["ca-bundle.crt"] = ingress.AuthorityPem } });
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.IngressControllers) { User = "developer" });
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.Secrets) { Namespace = "openshift-ingress", User = "developer" });

        var ca = await IngressCaStep.ReadAsync(_cluster.DeveloperSession(), CancellationToken.None);

        Assert.Equal("configmaps \"default-ingress-cert\" in namespace \"openshift-config-managed\"", ca.Source);
        Assert.Contains(ca.Certificates.Cast<System.Security.Cryptography.X509Certificates.X509Certificate2>(), c => c.Subject == "CN=Ingress operator CA");
        Assert.Contains(_cluster.Log.Lines, l => l.StartsWith("Skipped ingresscontrollers.operator.openshift.io \"default\"", StringComparison.Ordinal)
            && l.Contains("lacks the permission 'get' on resource \"ingresscontrollers\""));
        Assert.DoesNotContain(_cluster.Server.Requests, r => r.Path.Contains("/secrets/", StringComparison.Ordinal));
        Assert.DoesNotContain("router-private-key", _cluster.Log.All);
    }

    [Fact]
    public async Task A_refused_secret_falls_back_to_default_ingress_cert()
    {
        using var ingress = LoopbackCertificates.Create("Ingress operator CA");
        _cluster.SeedSecret("openshift-ingress", "router-certs-default", ("tls.crt", ingress.ServerChainPem));
        _cluster.Seed(KubeResources.ConfigMaps, "openshift-config-managed", "default-ingress-cert",
            new JsonObject { ["data"] = new JsonObject { ["ca-bundle.crt"] = ingress.AuthorityPem } });
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.Secrets) { Namespace = "openshift-ingress", User = "developer" });

        var ca = await IngressCaStep.ReadAsync(_cluster.DeveloperSession(), CancellationToken.None);

        Assert.Equal("configmaps \"default-ingress-cert\" in namespace \"openshift-config-managed\"", ca.Source);
        Assert.Contains(_cluster.Log.Lines, l => l.StartsWith("Skipped secrets \"router-certs-default\" in namespace \"openshift-ingress\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task When_every_source_is_refused_the_error_names_each_read_and_the_one_configmap_to_grant()
    {
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.IngressControllers) { User = "developer" });
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.ConfigMaps) { Namespace = "openshift-config-managed", User = "developer" });

        var error = await Assert.ThrowsAsync<VddkException>(() => IngressCaStep.ReadAsync(_cluster.DeveloperSession(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterForbidden, error.Code);
        Assert.Contains("get ingresscontrollers.operator.openshift.io \"default\" in namespace \"openshift-ingress-operator\"", error.Message);
        Assert.Contains("get configmaps \"default-ingress-cert\" in namespace \"openshift-config-managed\"", error.Message);
        Assert.Contains("--resource=configmaps --resource-name=default-ingress-cert", error.Message);
        Assert.Contains("--user=developer", error.Message);
        Assert.DoesNotContain("--resource=secrets", error.Message);
    }

    [Fact]
    public async Task Without_any_ingress_certificate_the_error_names_where_it_looked()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() => IngressCaStep.RunAsync(_cluster.Session(), CancellationToken.None));

        Assert.Equal(ErrorCodes.IngressCertificateNotFound, error.Code);
        Assert.Contains("secrets \"router-certs-default\" in namespace \"openshift-ingress\" does not exist", error.Message);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }
}

public sealed class ServiceAccountTokensTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task Requests_a_ten_minute_token_that_the_cluster_recognizes()
    {
        _cluster.Seed(KubeResources.ServiceAccounts, "openshift-mtv", "builder");

        var token = await ServiceAccountTokens.RequestAsync(_cluster.Session(), "openshift-mtv", "builder", null, CancellationToken.None);

        var issued = _cluster.Server.Tokens.Validate(token.Value);
        Assert.NotNull(issued);
        Assert.Equal("system:serviceaccount:openshift-mtv:builder", issued.UserName);
        Assert.InRange((token.ExpiresAt - DateTimeOffset.UtcNow).TotalSeconds, 590, 601);
        Assert.DoesNotContain(token.Value, token.ToString());
        Assert.DoesNotContain(token.Value, _cluster.Log.All);
    }

    [Fact]
    public async Task A_missing_service_account_is_a_clear_error()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() => ServiceAccountTokens.RequestAsync(_cluster.Session(), "openshift-mtv", "builder", null, CancellationToken.None));

        Assert.Equal(ErrorCodes.ServiceAccountTokenFailed, error.Code);
        Assert.Contains("VddkServiceAccount", error.Message);
    }

    [Fact]
    public async Task A_repository_namespace_that_does_not_exist_is_named_as_such_not_as_a_missing_service_account()
    {
        // Forklift upstream runs in konveyor-forklift; the default repository's openshift-mtv then does not exist.
        var error = await Assert.ThrowsAsync<VddkException>(() => ServiceAccountTokens.RequestAsync(_cluster.Session(), "openshift-mtv-typo", "builder", null, CancellationToken.None));

        Assert.Equal(ErrorCodes.ServiceAccountTokenFailed, error.Code);
        Assert.Contains("the namespace \"openshift-mtv-typo\" itself does not exist", error.Message);
        Assert.Contains("VddkRepository", error.Message);
        Assert.DoesNotContain("create the service account", error.Message);
    }

    [Fact]
    public async Task Forbidden_token_request_names_the_subresource_permission()
    {
        _cluster.Seed(KubeResources.ServiceAccounts, "openshift-mtv", "builder");
        _cluster.Server.Forbid(new KubeForbiddenRule("create", KubeResources.ServiceAccounts) { Subresource = "token" });

        var error = await Assert.ThrowsAsync<VddkException>(() => ServiceAccountTokens.RequestAsync(_cluster.DeveloperSession(), "openshift-mtv", "builder", null, CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterForbidden, error.Code);
        Assert.Contains("lacks the permission 'create' on resource \"serviceaccounts/token\" in API group \"\" in namespace \"openshift-mtv\"", error.Message);
    }

    [Fact]
    public async Task The_token_source_reuses_a_valid_token_and_refreshes_on_demand()
    {
        _cluster.Seed(KubeResources.ServiceAccounts, "openshift-mtv", "builder");
        var source = new ServiceAccountTokenSource(_cluster.Session(), "openshift-mtv", "builder");

        var first = await source.GetAsync(refresh: false, CancellationToken.None);
        var again = await source.GetAsync(refresh: false, CancellationToken.None);
        var refreshed = await source.GetAsync(refresh: true, CancellationToken.None);

        Assert.Same(first, again);
        Assert.NotEqual(first.Value, refreshed.Value);
        Assert.Equal(2, _cluster.Server.Tokens.Issued.Count);
    }
}

public sealed class ImagePullerBindingTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private IEnumerable<string> Subjects() =>
        ((JsonArray)_cluster.Store.GetRequired(KubeResources.RoleBindings, "openshift-mtv", "allow-image-pullers")["subjects"]!).Select(s => s!["name"]!.GetValue<string>());

    [Fact]
    public async Task Grants_system_authenticated_by_default_once()
    {
        await ImagePullerBinding.RunAsync(_cluster.Session(), "openshift-mtv", [], CancellationToken.None);
        _cluster.Server.ClearRequestLog();
        await ImagePullerBinding.RunAsync(_cluster.Session(), "openshift-mtv", [], CancellationToken.None);

        var binding = _cluster.Store.GetRequired(KubeResources.RoleBindings, "openshift-mtv", "allow-image-pullers");
        Assert.Equal("system:image-puller", binding["roleRef"]!["name"]!.GetValue<string>());
        Assert.Equal(["system:authenticated"], Subjects());
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task A_binding_the_user_may_create_but_not_grant_names_the_bind_permission_on_the_cluster_role()
    {
        // RBAC's escalation check: 'create' on rolebindings is there, 'bind' on the ClusterRole (or its permissions) is not.
        _cluster.Server.InjectFault(new KubeFault(HttpStatusCode.Forbidden)
        {
            Verb = "create",
            Resource = KubeResources.RoleBindings,
            Reason = "Forbidden",
            Message = "rolebindings.rbac.authorization.k8s.io \"allow-image-pullers\" is forbidden: user \"system:serviceaccount:ci:deployer\" " +
                "(groups=[\"system:serviceaccounts\" \"system:serviceaccounts:ci\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n" +
                "{APIGroups:[\"image.openshift.io\"], Resources:[\"imagestreams/layers\"], Verbs:[\"get\"]}",
        });

        var error = await Assert.ThrowsAsync<VddkException>(() => ImagePullerBinding.RunAsync(_cluster.Session(), "openshift-mtv", [], CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterForbidden, error.Code);
        Assert.Contains("'bind' on clusterroles \"system:image-puller\"", error.Message);
        Assert.Contains("system:serviceaccount:ci:deployer", error.Message);
        Assert.Contains("VddkGrantImagePullers=false", error.Message);
        Assert.DoesNotContain("'create' on resource \"rolebindings\"", error.Message);
        Assert.DoesNotContain("is missing", error.Message);
    }

    [Fact]
    public async Task Per_namespace_grants_add_service_account_groups_and_keep_existing_subjects()
    {
        await ImagePullerBinding.RunAsync(_cluster.Session(), "openshift-mtv", ["vm-a"], CancellationToken.None);
        await ImagePullerBinding.RunAsync(_cluster.Session(), "openshift-mtv", ["vm-a", "vm-b"], CancellationToken.None);

        Assert.Equal(["system:serviceaccounts:vm-a", "system:serviceaccounts:vm-b"], Subjects());
    }

    [Theory]
    [InlineData("VM-Imports")]
    [InlineData("vm_imports")]
    [InlineData("vm-imports-")]
    [InlineData("openshift-mtv/vm")]
    [InlineData("a-namespace-name-that-is-longer-than-sixty-three-characters-long")]
    public async Task A_name_that_cannot_be_a_namespace_is_VDDK5002_and_nothing_is_written(string name)
    {
        var error = await Assert.ThrowsAsync<VddkException>(() => ImagePullerBinding.RunAsync(_cluster.Session(), "openshift-mtv", ["vm-a", name], CancellationToken.None));

        Assert.Equal(ErrorCodes.PropertyInvalid, error.Code);
        Assert.Contains($"'{name}'", error.Message, StringComparison.Ordinal);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task Dry_run_writes_nothing()
    {
        var session = _cluster.Session(dryRun: true);

        await ImagePullerBinding.RunAsync(session, "openshift-mtv", [], CancellationToken.None);

        Assert.Empty(_cluster.Server.MutatingRequests);
        Assert.Contains(session.Changes.Changes, c => c.Field == "subjects" && c.NewValue == "Group/system:authenticated");
    }
}

public sealed class ForkliftProviderUpdateTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();
    private const string Image = "image-registry.openshift-image-registry.svc:5000/openshift-mtv/vddk@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task Sets_the_vddk_init_image_removes_the_skip_annotation_and_is_idempotent()
    {
        _cluster.Seed(KubeResources.ForkliftProviders, "openshift-mtv", "vcenter", new JsonObject
        {
            ["metadata"] = new JsonObject { ["annotations"] = new JsonObject { ["forklift.konveyor.io/empty-vddk-init-image"] = "yes" } },
            ["spec"] = new JsonObject { ["type"] = "vsphere", ["url"] = "https://vcenter.example.test/sdk", ["settings"] = new JsonObject { ["sdkEndpoint"] = "vcenter" } },
        });
        var provider = ForkliftProviderUpdate.ParseProvider("vcenter");

        await ForkliftProviderUpdate.RunAsync(_cluster.Session(), provider, Image, CancellationToken.None);
        _cluster.Server.ClearRequestLog();
        await ForkliftProviderUpdate.RunAsync(_cluster.Session(), provider, Image, CancellationToken.None);

        var stored = _cluster.Store.GetRequired(KubeResources.ForkliftProviders, "openshift-mtv", "vcenter");
        Assert.Equal(Image, stored["spec"]!["settings"]!["vddkInitImage"]!.GetValue<string>());
        Assert.Equal("vcenter", stored["spec"]!["settings"]!["sdkEndpoint"]!.GetValue<string>());
        Assert.Null(stored["metadata"]!["annotations"]?["forklift.konveyor.io/empty-vddk-init-image"]);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task A_missing_provider_is_a_clear_error()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() =>
            ForkliftProviderUpdate.RunAsync(_cluster.Session(), ForkliftProviderUpdate.ParseProvider("migration/vcenter"), Image, CancellationToken.None));

        Assert.Equal(ErrorCodes.ForkliftProviderNotFound, error.Code);
        Assert.Contains("providers.forklift.konveyor.io \"vcenter\" in namespace \"migration\"", error.Message);
    }

    [Theory]
    [InlineData("a/b/c")]
    [InlineData("/b")]
    [InlineData("")]
    public void Provider_names_other_than_name_or_namespace_slash_name_are_refused(string value)
    {
        Assert.Equal(ErrorCodes.PropertyInvalid, Assert.Throws<VddkException>(() => ForkliftProviderUpdate.ParseProvider(value)).Code);
    }
}

public sealed class RegistryRouteTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task Finds_the_default_route_host_or_explains_how_to_get_one()
    {
        var missing = await Assert.ThrowsAsync<VddkException>(() => RegistryRoute.DiscoverHostAsync(_cluster.Session(), CancellationToken.None));
        _cluster.Seed(KubeResources.Routes, "openshift-image-registry", "default-route",
            new JsonObject { ["spec"] = new JsonObject { ["host"] = "default-route-openshift-image-registry.apps.example.test" } });

        var host = await RegistryRoute.DiscoverHostAsync(_cluster.Session(), CancellationToken.None);

        Assert.Equal(ErrorCodes.RegistryRouteNotFound, missing.Code);
        Assert.Contains("oc patch configs.imageregistry.operator.openshift.io/cluster --type merge -p '{\"spec\":{\"defaultRoute\":true}}'", missing.Message);
        Assert.Contains("VddkRegistry", missing.Message);
        Assert.Equal("default-route-openshift-image-registry.apps.example.test", host);
    }

    [Fact]
    public async Task A_removed_registry_is_named_as_not_running_instead_of_asking_for_its_default_route()
    {
        // Bare metal, vSphere and other installs without shareable storage leave the registry Removed.
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", JsonNode.Parse("""
            {"spec":{"managementState":"Removed","replicas":1,"storage":{}}}
            """)!.AsObject());

        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRoute.DiscoverHostAsync(_cluster.Session(), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryRouteNotFound, error.Code);
        Assert.Contains("managementState Removed", error.Message);
        Assert.Contains("PrepareVddkRegistry", error.Message);
        Assert.DoesNotContain("defaultRoute\":true", error.Message);
    }

    [Fact]
    public async Task A_default_route_switched_on_but_not_there_points_at_the_operator_not_at_the_switch()
    {
        _cluster.Seed(KubeResources.ImageRegistryConfigs, null, "cluster", JsonNode.Parse("""
            {"spec":{"managementState":"Managed","replicas":1,"defaultRoute":true,"storage":{"emptyDir":{}}}}
            """)!.AsObject());

        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRoute.DiscoverHostAsync(_cluster.Session(), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryRouteNotFound, error.Code);
        Assert.Contains("spec.defaultRoute is already true", error.Message);
        Assert.Contains("oc get clusteroperator image-registry", error.Message);
        Assert.DoesNotContain("defaultRoute\":true", error.Message);
    }

    [Fact]
    public async Task Without_a_default_route_a_custom_route_the_operator_publishes_is_used_and_named()
    {
        _cluster.Seed(KubeResources.ImageConfigs, null, "cluster", JsonNode.Parse("""
            {"spec":{},"status":{"internalRegistryHostname":"image-registry.openshift-image-registry.svc:5000",
              "externalRegistryHostnames":["registry.apps.example.test"]}}
            """)!.AsObject());

        var host = await RegistryRoute.DiscoverHostAsync(_cluster.Session(), CancellationToken.None);

        Assert.Equal("registry.apps.example.test", host);
        Assert.Contains(_cluster.Log.Lines, l => l.Contains("no default route", StringComparison.Ordinal) && l.Contains("VddkRegistryCaBundle", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_ci_account_that_may_not_read_the_image_config_still_gets_the_missing_route_explained()
    {
        _cluster.Server.Forbid(new KubeForbiddenRule("get", KubeResources.ImageConfigs) { User = "developer" });

        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRoute.DiscoverHostAsync(_cluster.DeveloperSession(), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryRouteNotFound, error.Code);
        Assert.Contains("defaultRoute", error.Message);
        Assert.Contains("images.config.openshift.io \"cluster\" could not be read either", error.Message);
    }
}

/// <summary>
/// A kubeconfig pointing at plain Kubernetes (kind, minikube, EKS...): the OpenShift API groups are not served, and
/// kube-apiserver answers their paths with a plain-text "404 page not found".
/// </summary>
public sealed class NotOpenShiftTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();

    public async Task InitializeAsync()
    {
        await _cluster.InitializeAsync();
        foreach (var group in new[] { "route.openshift.io", "config.openshift.io", "imageregistry.operator.openshift.io", "operator.openshift.io", "objectbucket.io", "forklift.konveyor.io" })
        {
            _cluster.Server.Unserve(group);
        }
    }

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task Publishing_to_the_cluster_says_it_is_not_openshift_instead_of_asking_for_a_default_route()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryRoute.DiscoverHostAsync(_cluster.Session(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterNotOpenShift, error.Code);
        Assert.Contains("not OpenShift", error.Message);
        Assert.Contains("routes.route.openshift.io/v1", error.Message);
        Assert.Contains("VddkRegistry", error.Message);
        Assert.DoesNotContain("PrepareVddkRegistry", error.Message);
    }

    [Fact]
    public async Task Preparing_the_registry_says_it_is_not_openshift_before_anything_is_written()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() =>
            RegistryPreparation.RunAsync(_cluster.Session(), new RegistryPreparationOptions(), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterNotOpenShift, error.Code);
        Assert.Contains("not OpenShift", error.Message);
        Assert.DoesNotContain("Install the operator", error.Message);
        Assert.Empty(_cluster.Server.MutatingRequests);
    }

    [Fact]
    public async Task A_provider_update_without_forklift_installed_says_so()
    {
        var error = await Assert.ThrowsAsync<VddkException>(() =>
            ForkliftProviderUpdate.RunAsync(_cluster.Session(), ForkliftProviderUpdate.ParseProvider("vcenter"),
                "image-registry.openshift-image-registry.svc:5000/openshift-mtv/vddk@sha256:" + new string('0', 64), CancellationToken.None));

        Assert.Equal(ErrorCodes.ForkliftProviderNotFound, error.Code);
        Assert.Contains("Forklift", error.Message);
        Assert.Contains("not installed", error.Message);
    }
}
