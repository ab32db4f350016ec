using System.Runtime.CompilerServices;
using VddkBuild.Cluster;
using VddkBuild.Diagnostics;
using VddkBuild.Threading;

namespace VddkBuild.Tasks;

/// <summary>
/// After PublishVddk pushed to the cluster: pull rights (RoleBinding allow-image-pullers in the repository's
/// namespace) and the Forklift Provider's <c>spec.settings.vddkInitImage</c> set to the in-cluster reference by digest.
/// Each part only writes what differs.
/// </summary>
public sealed class ClusterConfigureVddkImage : ClusterTask
{
    public string? Repository { get; set; }

    /// <summary>VddkClusterImageReference: image-registry.openshift-image-registry.svc:5000/ns/name@sha256:...</summary>
    public string? ClusterImageReference { get; set; }

    /// <summary>VddkRegistry, when the push went to an explicit registry (empty after a push to the cluster).</summary>
    public string? Registry { get; set; }

    /// <summary>VddkImageReference: the pushed image by digest, under the name it was pushed to.</summary>
    public string? ImageReference { get; set; }

    /// <summary>'true' when PublishVddk pushed to the cluster's registry itself (no VddkRegistry).</summary>
    public string? ClusterPublished { get; set; }

    /// <summary>VddkGrantImagePullers (default true).</summary>
    public string? GrantImagePullers { get; set; }

    /// <summary>VddkImagePullerNamespaces: ';'-separated; empty grants every authenticated user.</summary>
    public string? ImagePullerNamespaces { get; set; }

    /// <summary>VddkForkliftProvider: 'name' (in the repository's namespace) or 'namespace/name'; empty: no provider update.</summary>
    public string? ForkliftProvider { get; set; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    protected override async Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        var grant = TaskProperties.Flag(GrantImagePullers, "VddkGrantImagePullers", fallback: true);
        var provider = ClusterTaskProperties.NullIfBlank(ForkliftProvider);
        if (!grant && provider is null)
        {
            return;
        }
        var repository = TaskProperties.Required(Repository, "VddkRepository", "Set it to namespace/name, e.g. openshift-mtv/vddk.");
        var ns = ClusterRegistryAccess.NamespaceOf(repository);
        var (connection, session) = ClusterTaskProperties.Open(Kubeconfig, KubeContext, dryRun: false, PollInterval, log);
        using (connection)
        {
            if (grant)
            {
                await ImagePullerBinding.RunAsync(session, ns, TaskProperties.List(ImagePullerNamespaces), cancellationToken).ConfigureAwait(false);
            }
            if (provider is not null)
            {
                var (image, property) = await ProviderImageAsync(session, cancellationToken).ConfigureAwait(false);
                if (!image.Contains("@sha256:", StringComparison.Ordinal))
                {
                    throw new VddkException(ErrorCodes.PropertyInvalid,
                        $"{property} '{image}' is not pinned by digest; Forklift must get the image by digest so that nodes never run a stale tag.", property);
                }
                var target = ForkliftProviderUpdate.ParseProvider(provider, ns);
                await ForkliftProviderUpdate.RunAsync(session, target, image, cancellationToken).ConfigureAwait(false);
                Announce($"VddkBuild: {target} uses {image}.");
            }
        }
    }

    /// <summary>
    /// The reference Forklift's pods pull: the registry's in-cluster name after a push to the cluster's own registry
    /// (through its route or service); after a push to another registry (Quay, Harbor...), the pushed reference, since
    /// the service name would point at an image that is not there.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<(string Image, string Property)> ProviderImageAsync(ClusterSession session, CancellationToken cancellationToken)
    {
        var cluster = (TaskProperties.Required(ClusterImageReference, "VddkClusterImageReference", "It is set by PublishVddk after a push."), "VddkClusterImageReference");
        var registry = ClusterTaskProperties.NullIfBlank(Registry);
        if (TaskProperties.Flag(ClusterPublished, "_VddkClusterPublished") || registry is null)
        {
            return cluster;
        }
        var (matches, unreadable) = await RegistryRoute.IsClusterRegistryAsync(session, registry, cancellationToken).ConfigureAwait(false);
        if (matches)
        {
            return cluster;
        }
        var pushed = TaskProperties.Required(ImageReference, "VddkImageReference", "It is set by PublishVddk after a push.");
        Announce($"VddkBuild: {registry} is not a name of this cluster's image registry (its service, default route or published routes"
            + (unreadable is null ? ")" : $"; {unreadable} could not be read)")
            + $", so the provider gets the pushed reference {pushed}. The cluster's nodes must be able to pull it: add the registry's credentials to the cluster's global pull secret or to the migration namespace, and its CA to image.config.openshift.io additionalTrustedCA if it has a private one.");
        return (pushed, "VddkImageReference");
    }
}
