namespace VddkBuild.Cluster;

/// <summary>A resource type addressed through the API server's REST tree (group, version, plural).</summary>
public sealed record ClusterResource(string Group, string Version, string Plural, string Kind, bool Namespaced)
{
    /// <summary>As Kubernetes names it in messages and RBAC: <c>secrets</c>, <c>configs.imageregistry.operator.openshift.io</c>.</summary>
    public string QualifiedName => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    public static readonly ClusterResource Namespaces = new("", "v1", "namespaces", "Namespace", false);
    public static readonly ClusterResource Secrets = new("", "v1", "secrets", "Secret", true);
    public static readonly ClusterResource ConfigMaps = new("", "v1", "configmaps", "ConfigMap", true);
    public static readonly ClusterResource ServiceAccounts = new("", "v1", "serviceaccounts", "ServiceAccount", true);
    public static readonly ClusterResource Pods = new("", "v1", "pods", "Pod", true);
    public static readonly ClusterResource Events = new("", "v1", "events", "Event", true);
    public static readonly ClusterResource RoleBindings = new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true);
    public static readonly ClusterResource Routes = new("route.openshift.io", "v1", "routes", "Route", true);
    public static readonly ClusterResource ObjectBucketClaims = new("objectbucket.io", "v1alpha1", "objectbucketclaims", "ObjectBucketClaim", true);
    public static readonly ClusterResource ImageRegistryConfigs = new("imageregistry.operator.openshift.io", "v1", "configs", "Config", false);
    public static readonly ClusterResource ClusterOperators = new("config.openshift.io", "v1", "clusteroperators", "ClusterOperator", false);
    public static readonly ClusterResource Proxies = new("config.openshift.io", "v1", "proxies", "Proxy", false);
    public static readonly ClusterResource IngressConfigs = new("config.openshift.io", "v1", "ingresses", "Ingress", false);
    public static readonly ClusterResource IngressControllers = new("operator.openshift.io", "v1", "ingresscontrollers", "IngressController", true);
    public static readonly ClusterResource Deployments = new("apps", "v1", "deployments", "Deployment", true);
    public static readonly ClusterResource ReplicaSets = new("apps", "v1", "replicasets", "ReplicaSet", true);
    public static readonly ClusterResource ForkliftProviders = new("forklift.konveyor.io", "v1beta1", "providers", "Provider", true);
}

/// <summary>One object, named the way messages and dry-run plans show it: <c>secrets "x" in namespace "y"</c>.</summary>
public sealed record ClusterObjectRef(ClusterResource Resource, string? Namespace, string Name)
{
    public override string ToString() =>
        Namespace is null ? $"{Resource.QualifiedName} \"{Name}\"" : $"{Resource.QualifiedName} \"{Name}\" in namespace \"{Namespace}\"";
}
