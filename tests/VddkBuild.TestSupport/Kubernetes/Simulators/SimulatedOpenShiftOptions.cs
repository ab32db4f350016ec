namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>How the simulated cluster starts out (defaults: a fresh cluster with ODF/NooBaa and MTV installed).</summary>
public sealed record SimulatedOpenShiftOptions
{
    /// <summary>False: <c>router-certs-default</c> holds only the leaf (a replaced default certificate without its chain).</summary>
    public bool RouterSecretIncludesCa { get; init; } = true;

    /// <summary>False: no ingress certificate at all (no router secret, no default-ingress-cert config map).</summary>
    public bool PublishIngressCertificate { get; init; } = true;

    /// <summary>Namespace of the repository (the MTV namespace), with service account <c>builder</c> and its push RoleBinding.</summary>
    public string RepositoryNamespace { get; init; } = "openshift-mtv";

    /// <summary>False: the builder service account exists but has no RoleBinding to system:image-builder.</summary>
    public bool BuilderCanPush { get; init; } = true;

    /// <summary>The vSphere Provider of MTV that receives the VDDK image (in <see cref="RepositoryNamespace"/>).</summary>
    public string ForkliftProviderName { get; init; } = "vcenter";
}
