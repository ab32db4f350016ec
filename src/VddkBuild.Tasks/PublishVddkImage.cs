using System.Runtime.CompilerServices;
using Microsoft.Build.Framework;
using VddkBuild.Diagnostics;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Tasks;

/// <summary>Builds the VDDK image and pushes it to a registry (target PublishVddk with VddkRegistry set).</summary>
public sealed class PublishVddkImage : VddkImageTask
{
    /// <summary>The in-cluster name of the OpenShift registry, the host Forklift's nodes pull from.</summary>
    public const string ClusterRegistryHost = "image-registry.openshift-image-registry.svc:5000";

    [Required] public string Registry { get; set; } = string.Empty;
    [Required] public string Repository { get; set; } = string.Empty;
    public string? RegistryInsecure { get; set; }
    public string? AllowPublicRegistry { get; set; }
    public string? MaxParallelUploads { get; set; }

    [Output] public string? ImageReference { get; private set; }
    [Output] public string? ClusterImageReference { get; private set; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    protected override async Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken)
    {
        var target = VddkBuild.Registry.ImageReference.ForRepository(Registry, Repository);
        var options = new PushOptions
        {
            AllowPublicRegistry = TaskProperties.Flag(AllowPublicRegistry, "VddkAllowPublicRegistry"),
            MaxParallelUploads = TaskProperties.Count(MaxParallelUploads, "VddkMaxParallelUploads", new PushOptions().MaxParallelUploads),
            ImageFormat = ImageFormatChoice(),
        };
        // Refuse a public registry before any work: the VDDK licence does not allow redistribution.
        PublicRegistryGuard.Check(target, options.AllowPublicRegistry, log);

        try
        {
            await PushAsync(target, options, log, cancellationToken).ConfigureAwait(false);
        }
        catch (VddkException ex) when (ex.Code is ErrorCodes.RegistryTlsFailed or ErrorCodes.RegistryAuthFailed
            && VddkBuild.Cluster.RegistryRoute.NamesClusterRegistryService(target.Registry) && string.Equals(ex.Subject, target.Registry, StringComparison.OrdinalIgnoreCase))
        {
            // A pipeline copying buildah's settings names the service; the generic hints (ingress CA, podman login) do not fit it.
            throw new VddkException(ex.Code, $"{ex.Message} {VddkBuild.Cluster.RegistryRoute.ServiceHint(target.Registry)}", ex.Subject, ex);
        }
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private async Task PushAsync(VddkBuild.Registry.ImageReference target, PushOptions options, IBuildLog log, CancellationToken cancellationToken)
    {
        IReadOnlyCollection<string> insecure = TaskProperties.Flag(RegistryInsecure, "VddkRegistryInsecure") ? [target.Registry] : [];
        using var registry = OpenRegistrySession(log, insecure, target.Registry);
        await using var early = StartEarlyLayerUpload(registry, target, options, log, cancellationToken);
        await using var earlyBase = StartEarlyBaseCopy(registry, target, options, log, cancellationToken);
        var (result, baseSource, tags) = await BuildImageAsync(registry, log, cancellationToken, early, earlyBase).ConfigureAwait(false);
        await using (baseSource.ConfigureAwait(false))
        {
            var pushed = await new ImagePusher(registry).PushAsync(result.Image, baseSource, target, tags, options, log, cancellationToken, early, earlyBase).ConfigureAwait(false);
            ImageReference = pushed.PinnedReference.ToString();
            ImageDigest = pushed.Digest.Value;
            ClusterImageReference = $"{ClusterRegistryHost}/{target.Repository}@{pushed.Digest}";
            Announce($"VddkBuild: {Describe(result)} pushed to {target} ({string.Join(", ", pushed.Tags)}{(pushed.ManifestMediaType == Oci.MediaTypes.DockerManifest ? "; Docker schema 2 manifest" : string.Empty)}): "
                + $"{pushed.Uploaded} blob(s) uploaded, {pushed.Mounted} mounted, {pushed.Skipped} already there");
            Announce($"VddkBuild: VddkImageDigest = {pushed.Digest}");
            Announce($"VddkBuild: VddkImageReference = {ImageReference}");
            // The in-cluster reference is only right for the cluster's own registry: a user pushing to Quay or Harbor
            // must not be shown an image-registry.openshift-image-registry.svc:5000 name as what to give Forklift.
            Announce(VddkBuild.Cluster.RegistryRoute.NamesClusterRegistry(target.Registry)
                ? $"VddkBuild: VddkClusterImageReference = {ClusterImageReference}  (Forklift vddkInitImage)"
                : $"VddkBuild: Forklift vddkInitImage: VddkImageReference; VddkClusterImageReference = {ClusterImageReference} only if {target.Registry} is a route of the OpenShift cluster's own registry");
        }
    }
}
