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
                var image = TaskProperties.Required(ClusterImageReference, "VddkClusterImageReference", "It is set by PublishVddk after a push.");
                if (!image.Contains("@sha256:", StringComparison.Ordinal))
                {
                    throw new VddkException(ErrorCodes.PropertyInvalid,
                        $"VddkClusterImageReference '{image}' is not pinned by digest; Forklift must get the image by digest so that nodes never run a stale tag.", "VddkClusterImageReference");
                }
                var target = ForkliftProviderUpdate.ParseProvider(provider, ns);
                await ForkliftProviderUpdate.RunAsync(session, target, image, cancellationToken).ConfigureAwait(false);
                Announce($"VddkBuild: {target} uses {image}.");
            }
        }
    }
}
