using VddkBuild.Oci;

namespace VddkBuild.Registry;

/// <summary>
/// Picks the manifest for a platform from an index. Stand-in until the shared <c>Images/PlatformSelector</c> is
/// merged (the lead switches <see cref="RegistryImageSource"/> to it): exact variant first, then an entry without
/// variant, then any match; none -> VDDK2003 listing what the index offers.
/// </summary>
internal static class IndexPlatformChoice
{
    public static Descriptor Select(ImageIndex index, Platform platform, string displayName)
    {
        var candidates = index.Manifests
            .Where(m => m.Platform is not null && MediaTypes.IsManifest(m.MediaType) && platform.Matches(m.Platform))
            .OrderBy(m => string.Equals(m.Platform!.Variant, platform.Variant, StringComparison.OrdinalIgnoreCase) ? 0 : m.Platform!.Variant is null ? 1 : 2)
            .ToList();
        if (candidates.Count > 0)
        {
            return candidates[0];
        }
        var offered = index.Manifests.Where(m => m.Platform is not null).Select(m => m.Platform!.ToString()).Distinct().ToList();
        throw new VddkException(ErrorCodes.PlatformNotFound,
            $"The base image {displayName} has no manifest for platform {platform}; it offers {(offered.Count == 0 ? "no platform-specific manifests" : string.Join(", ", offered))}. Choose one of those (VddkPlatform) or another base image.",
            displayName);
    }
}
