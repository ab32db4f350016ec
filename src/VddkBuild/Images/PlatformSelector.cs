using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// Picks the one manifest of an index that serves the requested platform. Used by every image source (layout,
/// archive, registry) so that they choose alike.
/// </summary>
public static class PlatformSelector
{
    /// <summary>
    /// Returns the best match: os and architecture equal; a requested variant must match (arm64's missing variant
    /// counts as v8); without a requested variant an exact "no variant"/v8 entry wins over others, then index order.
    /// An index with a single entry that declares no platform is returned as is (the config check decides).
    /// Throws VDDK2003 listing the platforms present when none fits.
    /// </summary>
    public static Descriptor Select(ImageIndex index, Platform requested, string displayName)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(requested);
        var manifests = index.Manifests ?? [];
        var best = manifests
            .Select((descriptor, position) => (descriptor, position))
            .Where(c => c.descriptor.Platform is { } p && requested.Matches(p) && !IsAttestation(c.descriptor))
            .OrderBy(c => Rank(requested, c.descriptor.Platform!))
            .ThenBy(c => c.position)
            .Select(c => c.descriptor)
            .FirstOrDefault();
        if (best is not null)
        {
            return best;
        }
        if (manifests.Count == 1 && manifests[0].Platform is null)
        {
            return manifests[0];
        }
        throw NotFound(requested, displayName, Offered(manifests));
    }

    /// <summary>
    /// Checks a single image's config platform (os/architecture/variant from the config JSON) against the request;
    /// a variant is compared only when both sides state one.
    /// </summary>
    public static void EnsureMatches(Platform actual, Platform requested, string displayName)
    {
        bool sameOsArch = string.Equals(actual.Os, requested.Os, StringComparison.OrdinalIgnoreCase)
            && string.Equals(actual.Architecture, requested.Architecture, StringComparison.OrdinalIgnoreCase);
        bool variantOk = requested.Variant is null || actual.Variant is null || requested.Matches(actual);
        if (!sameOsArch || !variantOk)
        {
            throw NotFound(requested, displayName, [actual.ToString()]);
        }
    }

    private static int Rank(Platform requested, Platform candidate)
    {
        if (string.Equals(requested.Variant, candidate.Variant, StringComparison.OrdinalIgnoreCase))
        {
            return 0;
        }
        // arm64 without a variant and arm64/v8 are the same platform.
        if (candidate.Architecture == "arm64" && (requested.Variant ?? "v8") == (candidate.Variant ?? "v8"))
        {
            return 0;
        }
        return 1;
    }

    /// <summary>BuildKit stores provenance/SBOM manifests in the index with platform unknown/unknown.</summary>
    private static bool IsAttestation(Descriptor descriptor) =>
        descriptor.Annotations?.ContainsKey("vnd.docker.reference.type") == true;

    private static List<string> Offered(IReadOnlyList<Descriptor> manifests) =>
        manifests.Where(d => !IsAttestation(d))
            .Select(d => d.Platform?.ToString() ?? "(no platform stated)")
            .Distinct(StringComparer.Ordinal)
            .ToList();

    private static VddkException NotFound(Platform requested, string displayName, IReadOnlyList<string> offered) =>
        new(ErrorCodes.PlatformNotFound,
            $"Base image '{displayName}' has no {requested} image; it offers: {(offered.Count == 0 ? "nothing" : string.Join(", ", offered))}. "
            + "Request one of those platforms or choose a base image built for " + requested + ".",
            displayName);
}
