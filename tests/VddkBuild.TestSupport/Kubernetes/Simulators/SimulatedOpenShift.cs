using System.Text.Json.Nodes;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// An OpenShift cluster for end-to-end tests: the loopback API server seeded with the objects a fresh cluster with
/// OpenShift Data Foundation and MTV has (namespaces, default IngressController and its certificate, the registry
/// operator's config and ClusterOperator, image config, the builder service account, a vSphere Provider), plus the
/// simulated controllers wired to real processes: the bucket provisioner on Ceph RGW, Route <c>s3</c> (TLS-terminating
/// front of RGW with an ingress-CA certificate) and the image registry operator (docker-registry on S3 behind the default route).
/// </summary>
public sealed class SimulatedOpenShift : IAsyncDisposable
{
    public const string S3RouteNamespace = "openshift-storage";
    public const string S3RouteName = "s3";

    private SimulatedOpenShift(LoopbackKubeApiServer api, SimulatedIngress ingress, TlsTerminatingRoute s3Route,
        ObjectBucketProvisioner provisioner, ImageRegistryOperator registryOperator, SimulatedOpenShiftOptions options)
    {
        Api = api;
        Ingress = ingress;
        S3Route = s3Route;
        Provisioner = provisioner;
        RegistryOperator = registryOperator;
        Options = options;
    }

    public LoopbackKubeApiServer Api { get; }

    public SimulatedIngress Ingress { get; }

    /// <summary>Route s3 in openshift-storage: HTTPS (ingress CA) in front of Ceph RGW.</summary>
    public TlsTerminatingRoute S3Route { get; }

    public ObjectBucketProvisioner Provisioner { get; }

    public ImageRegistryOperator RegistryOperator { get; }

    public SimulatedOpenShiftOptions Options { get; }

    /// <summary>The admin kubeconfig of the API server.</summary>
    public string KubeconfigPath => Api.KubeconfigPath;

    public static async Task<SimulatedOpenShift> StartAsync(CephRgw ceph, SimulatedOpenShiftOptions? options = null)
    {
        options ??= new SimulatedOpenShiftOptions();
        ceph.Require();
        var api = await LoopbackKubeApiServer.StartAsync();
        var ingress = SimulatedIngress.Create();
        var s3Route = TlsTerminatingRoute.Start(ingress.IssueRouteCertificate(), new Uri(ceph.Endpoint));
        Seed(api.Store, ingress, s3Route, options);
        var provisioner = new ObjectBucketProvisioner(api, ceph);
        var registryOperator = await ImageRegistryOperator.StartAsync(api, ingress);
        return new SimulatedOpenShift(api, ingress, s3Route, provisioner, registryOperator, options);
    }

    private static void Seed(KubeObjectStore store, SimulatedIngress ingress, TlsTerminatingRoute s3Route, SimulatedOpenShiftOptions options)
    {
        foreach (var ns in new[] { "openshift-image-registry", "openshift-storage", "openshift-ingress", "openshift-ingress-operator", "openshift-config",
                     "openshift-config-managed", options.RepositoryNamespace }.Distinct(StringComparer.Ordinal))
        {
            store.Create(KubeResources.Namespaces, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = ns } });
        }
        store.Create(KubeResources.IngressControllers, "openshift-ingress-operator", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "default", ["namespace"] = "openshift-ingress-operator" },
            ["spec"] = new JsonObject { ["replicas"] = 2 },
        });
        if (options.PublishIngressCertificate)
        {
            ingress.Publish(store, options.RouterSecretIncludesCa);
        }
        store.Create(KubeResources.ImageConfigs, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "cluster" }, ["spec"] = new JsonObject() });
        store.Create(KubeResources.Routes, S3RouteNamespace, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = S3RouteName, ["namespace"] = S3RouteNamespace },
            ["spec"] = new JsonObject
            {
                ["host"] = s3Route.Authority,
                ["to"] = new JsonObject { ["kind"] = "Service", ["name"] = "s3" },
                ["tls"] = new JsonObject { ["termination"] = "reencrypt" },
            },
        });
        var mtv = options.RepositoryNamespace;
        foreach (var account in new[] { "builder", "default", "deployer" })
        {
            store.Create(KubeResources.ServiceAccounts, mtv, new JsonObject { ["metadata"] = new JsonObject { ["name"] = account, ["namespace"] = mtv } });
        }
        if (options.BuilderCanPush)
        {
            store.Create(KubeResources.RoleBindings, mtv, new JsonObject
            {
                ["metadata"] = new JsonObject { ["name"] = "system:image-builders", ["namespace"] = mtv },
                ["roleRef"] = new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "ClusterRole", ["name"] = "system:image-builder" },
                ["subjects"] = new JsonArray(new JsonObject { ["kind"] = "ServiceAccount", ["name"] = "builder", ["namespace"] = mtv }),
            });
        }
        store.Create(KubeResources.ForkliftProviders, mtv, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = options.ForkliftProviderName, ["namespace"] = mtv },
            ["spec"] = new JsonObject
            {
                ["type"] = "vsphere",
                ["url"] = "https://vcenter.example.com/sdk",
                ["secret"] = new JsonObject { ["name"] = "vcenter-credentials", ["namespace"] = mtv },
                ["settings"] = new JsonObject { ["sdkEndpoint"] = "vcenter" },
            },
        }, keepStatus: true);
    }

    /// <summary>A kubeconfig for a service account of the cluster (a TokenRequest-issued token), e.g. for in-cluster style runs.</summary>
    public string WriteServiceAccountKubeconfig(string path, string ns, string serviceAccount)
    {
        var token = Api.Tokens.Issue(ns, serviceAccount, TimeSpan.FromHours(1), ["https://kubernetes.default.svc"]);
        return Api.WriteKubeconfig(path, token.Token, defaultNamespace: ns);
    }

    public async ValueTask DisposeAsync()
    {
        Provisioner.Dispose();
        await RegistryOperator.DisposeAsync();
        await S3Route.DisposeAsync();
        await Api.DisposeAsync();
        Ingress.Dispose();
    }
}
