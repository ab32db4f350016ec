using System.Runtime.CompilerServices;
using Microsoft.Build.Framework;
using VddkBuild.Cluster;
using VddkBuild.Diagnostics;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Tasks;

/// <summary>
/// PublishVddk against the cluster (no VddkRegistry): builds the image and pushes it through the registry's default
/// route (in a pod: its service), trusting the ingress CA read from the cluster (in a pod: the service CA), authenticated
/// by a 10-minute token for VddkServiceAccount, renewed if it expires mid-push (in a pod without VddkServiceAccount: the
/// pod's own service account token, re-read as it rotates). No oc, no podman login, no token in any property, file or log.
/// </summary>
public sealed class ClusterPublishVddkImage : VddkImageTask
{
    public string? Kubeconfig { get; set; }
    public string? KubeContext { get; set; }
    public string? PollInterval { get; set; }
    [Required] public string Repository { get; set; } = string.Empty;
    public string? ServiceAccount { get; set; }
    public string? MaxParallelUploads { get; set; }

    /// <summary>The route host the image was pushed to.</summary>
    [Output] public string? Registry { get; private set; }
    [Output] public string? ImageReference { get; private set; }
    [Output] public string? ClusterImageReference { get; private set; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    protected override async Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        // Properties are checked before the cluster is asked anything: a typo is VDDK5002, not a cluster error or a TokenRequest.
        var options = new PushOptions
        {
            MaxParallelUploads = TaskProperties.Count(MaxParallelUploads, "VddkMaxParallelUploads", new PushOptions().MaxParallelUploads),
            ImageFormat = ImageFormatChoice(),
        };
        // Base pulls still read the SDK's password variables, which MSBuild has already logged, as on the VddkRegistry path.
        SecretEnvironmentGuard.Check(log);
        var (connection, session) = ClusterTaskProperties.Open(Kubeconfig, KubeContext, dryRun: false, PollInterval, log);
        using (connection)
        {
            var access = await ClusterRegistryAccess.OpenAsync(session, Repository, ServiceAccount, cancellationToken).ConfigureAwait(false);
            var transport = new RegistryTransportOptions
            {
                CaBundlePath = string.IsNullOrWhiteSpace(RegistryCaBundle) ? null : Path.GetFullPath(RegistryCaBundle),
                InsecureRegistries = [.. TaskProperties.List(InsecureRegistries), .. BaseMirrorInsecureHosts(access.Registry)],
            }.WithEnvironment();
            using var registry = ClusterImagePush.OpenRegistrySession(access, transport, log, NullIfBlank(RegistryUserName));
            await using var early = StartEarlyLayerUpload(registry, ClusterImagePush.Target(access, Repository), options, log, cancellationToken);
            await using var earlyBase = StartEarlyBaseCopy(registry, ClusterImagePush.Target(access, Repository), options, log, cancellationToken);
            var (result, baseSource, tags) = await BuildImageAsync(registry, log, cancellationToken, early, earlyBase).ConfigureAwait(false);
            await using (baseSource.ConfigureAwait(false))
            {
                var cluster = await ClusterImagePush.PushAsync(access, registry, result.Image, baseSource, Repository, tags, options, log, cancellationToken, early, earlyBase).ConfigureAwait(false);
                var pushed = cluster.Pushed;
                var target = cluster.Target;
                Registry = access.Registry;
                ImageReference = pushed.PinnedReference.ToString();
                ClusterImageReference = cluster.ClusterImageReference;
                ImageDigest = pushed.Digest.Value;
                Announce($"VddkBuild: {Describe(result)} pushed to the cluster registry {target} ({string.Join(", ", pushed.Tags)}{(pushed.ManifestMediaType == Oci.MediaTypes.DockerManifest ? "; Docker schema 2 manifest" : string.Empty)}): "
                    + $"{pushed.Uploaded} blob(s) uploaded, {pushed.Mounted} mounted, {pushed.Skipped} already there");
                Announce($"VddkBuild: VddkImageDigest = {pushed.Digest}");
                Announce($"VddkBuild: VddkImageReference = {ImageReference}");
                Announce($"VddkBuild: VddkClusterImageReference = {ClusterImageReference}  (Forklift vddkInitImage)");
            }
        }
    }
}
