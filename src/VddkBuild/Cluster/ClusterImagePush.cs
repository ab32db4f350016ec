using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Pushes an image to the cluster's registry route with the access <see cref="ClusterRegistryAccess"/> resolved, and
/// returns the reference Forklift needs (the in-cluster service host, by digest). The registry's bare "denied" is
/// turned into an error naming the service account and the permission it lacks.
/// </summary>
public static class ClusterImagePush
{
    /// <summary>A registry session that trusts the ingress CA (plus <paramref name="transport"/>'s own bundle) and authenticates with the token.</summary>
    public static RegistrySession OpenRegistrySession(ClusterRegistryAccess access, RegistryTransportOptions transport, IBuildLog log, string? userName = null) =>
        RegistrySession.Create(transport with { TrustedCertificates = access.TrustedCertificates }, new CredentialOptions { InProcess = access.Credentials, UserName = userName, PushRegistry = access.Registry, ScopeEnvironmentSecrets = true }, log);

    /// <summary>The route host and repository an image for <paramref name="repository"/> is pushed to.</summary>
    public static ImageReference Target(ClusterRegistryAccess access, string repository) => ImageReference.ForRepository(access.Registry, repository.Trim());

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<ClusterPushResult> PushAsync(ClusterRegistryAccess access, RegistrySession registry, BuiltImage image, IImageSource baseSource,
        string repository, IReadOnlyList<string> tags, PushOptions options, IBuildLog log, CancellationToken cancellationToken, EarlyLayerUpload? early = null, EarlyBaseCopy? earlyBase = null)
    {
        var target = Target(access, repository);
        PushResult pushed;
        try
        {
            pushed = await new ImagePusher(registry).PushAsync(image, baseSource, target, tags, options, log, cancellationToken, early, earlyBase).ConfigureAwait(false);
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.RegistryDenied)
        {
            throw access.ExplainDenied(ex, repository.Trim());
        }
        return new ClusterPushResult(pushed, target, $"{RegistryRoute.InternalHost}/{target.Repository}@{pushed.Digest}");
    }
}

/// <param name="ClusterImageReference">image-registry.openshift-image-registry.svc:5000/ns/name@sha256:...: what nodes pull.</param>
public sealed record ClusterPushResult(PushResult Pushed, ImageReference Target, string ClusterImageReference);
