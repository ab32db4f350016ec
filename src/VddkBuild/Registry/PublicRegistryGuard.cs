using VddkBuild.Diagnostics;

namespace VddkBuild.Registry;

/// <summary>
/// The VMware VDDK licence does not allow redistributing VDDK to third parties; an image holding it belongs in a
/// private registry. Pushing to a well-known public registry host is therefore refused (VDDK3006) unless the user
/// states it is a private repository there (VddkAllowPublicRegistry=true), which is then warned about (VDDK3902).
/// </summary>
public static class PublicRegistryGuard
{
    private static readonly HashSet<string> PublicHosts = new(StringComparer.OrdinalIgnoreCase)
    {
        "docker.io", "registry-1.docker.io", "index.docker.io", "registry.hub.docker.com",
        "quay.io", "ghcr.io", "docker.pkg.github.com", "gcr.io", "public.ecr.aws", "mcr.microsoft.com",
        "registry.gitlab.com", "nvcr.io", "registry.access.redhat.com", "registry.redhat.io", "docker.elastic.co",
        "registry.k8s.io", "k8s.gcr.io", "cr.l5d.io", "lscr.io",
    };

    /// <summary>Suffixes of multi-tenant registries with per-region or per-project hosts.</summary>
    private static readonly string[] PublicSuffixes = [".gcr.io", ".pkg.dev", ".docker.io", ".quay.io"];

    public static bool IsPublic(ImageReference target)
    {
        var host = target.HostName.TrimEnd('.');
        return PublicHosts.Contains(host) || PublicSuffixes.Any(s => host.EndsWith(s, StringComparison.OrdinalIgnoreCase));
    }

    public static void Check(ImageReference target, bool allowPublic, IBuildLog log)
    {
        if (!IsPublic(target))
        {
            return;
        }
        if (!allowPublic)
        {
            throw new VddkException(ErrorCodes.PublicRegistryRefused,
                $"Refusing to push the VDDK image to {target.Registry}, a public registry. The VMware VDDK licence does not permit redistributing VDDK, and an image there may become readable by others. Push to your cluster's or a private registry; if {target.Registry}/{target.Repository} is private and only your organisation can pull it, set VddkAllowPublicRegistry=true.",
                target.ToString());
        }
        log.Warn(ErrorCodes.PublicRegistryAllowed,
            $"Pushing the VDDK image to {target.Registry}, a public registry, because VddkAllowPublicRegistry=true. Make sure {target.Repository} is private: the VMware VDDK licence does not permit redistribution.");
    }
}
