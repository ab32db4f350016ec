namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// One resource type the loopback API server serves: where it lives in the REST tree (group, version, plural) and how
/// it behaves (namespaced or cluster-scoped, whether it has a <c>/status</c> subresource, which makes
/// <c>metadata.generation</c> track spec changes).
/// </summary>
public sealed record KubeResource(string Group, string Version, string Plural, string Kind, bool Namespaced, bool HasStatus)
{
    /// <summary><c>v1</c> for the core group, <c>group/version</c> otherwise.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>The resource as Kubernetes names it in messages: <c>secrets</c>, <c>configs.imageregistry.operator.openshift.io</c>.</summary>
    public string QualifiedName => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    public override string ToString() => $"{QualifiedName}/{Version}";
}

/// <summary>The resource types the cluster operations of VddkBuild touch, as the loopback server knows them.</summary>
public static class KubeResources
{
    public static readonly KubeResource Namespaces = new("", "v1", "namespaces", "Namespace", Namespaced: false, HasStatus: true);
    public static readonly KubeResource Secrets = new("", "v1", "secrets", "Secret", Namespaced: true, HasStatus: false);
    public static readonly KubeResource ConfigMaps = new("", "v1", "configmaps", "ConfigMap", Namespaced: true, HasStatus: false);
    public static readonly KubeResource ServiceAccounts = new("", "v1", "serviceaccounts", "ServiceAccount", Namespaced: true, HasStatus: false);
    public static readonly KubeResource Pods = new("", "v1", "pods", "Pod", Namespaced: true, HasStatus: true);
    public static readonly KubeResource Events = new("", "v1", "events", "Event", Namespaced: true, HasStatus: false);
    public static readonly KubeResource Services = new("", "v1", "services", "Service", Namespaced: true, HasStatus: true);
    public static readonly KubeResource RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", Namespaced: true, HasStatus: false);
    public static readonly KubeResource Routes = new("route.openshift.io", "v1", "routes", "Route", Namespaced: true, HasStatus: true);
    public static readonly KubeResource ObjectBucketClaims = new("objectbucket.io", "v1alpha1", "objectbucketclaims", "ObjectBucketClaim", Namespaced: true, HasStatus: true);
    public static readonly KubeResource ObjectBuckets = new("objectbucket.io", "v1alpha1", "objectbuckets", "ObjectBucket", Namespaced: false, HasStatus: true);
    public static readonly KubeResource ImageRegistryConfigs = new("imageregistry.operator.openshift.io", "v1", "configs", "Config", Namespaced: false, HasStatus: true);
    public static readonly KubeResource ClusterOperators = new("config.openshift.io", "v1", "clusteroperators", "ClusterOperator", Namespaced: false, HasStatus: true);
    public static readonly KubeResource IngressConfigs = new("config.openshift.io", "v1", "ingresses", "Ingress", Namespaced: false, HasStatus: true);
    public static readonly KubeResource ImageConfigs = new("config.openshift.io", "v1", "images", "Image", Namespaced: false, HasStatus: true);
    public static readonly KubeResource Proxies = new("config.openshift.io", "v1", "proxies", "Proxy", Namespaced: false, HasStatus: true);
    public static readonly KubeResource IngressControllers = new("operator.openshift.io", "v1", "ingresscontrollers", "IngressController", Namespaced: true, HasStatus: true);
    public static readonly KubeResource Deployments = new("apps", "v1", "deployments", "Deployment", Namespaced: true, HasStatus: true);
    public static readonly KubeResource ReplicaSets = new("apps", "v1", "replicasets", "ReplicaSet", Namespaced: true, HasStatus: true);
    public static readonly KubeResource ForkliftProviders = new("forklift.konveyor.io", "v1beta1", "providers", "Provider", Namespaced: true, HasStatus: true);

    public static IReadOnlyList<KubeResource> All { get; } =
    [
        Namespaces, Secrets, ConfigMaps, ServiceAccounts, Pods, Events, Services, RoleBindings, Routes, ObjectBucketClaims,
        ObjectBuckets, ImageRegistryConfigs, ClusterOperators, IngressConfigs, ImageConfigs, Proxies, IngressControllers,
        Deployments, ReplicaSets, ForkliftProviders,
    ];
}
