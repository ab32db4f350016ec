namespace VddkBuild.Images;

/// <summary>What the VDDK image adds to its base's config.</summary>
public sealed record ImageSettings
{
    /// <summary>The VDDK tree's folder name, also its absolute path in the image.</summary>
    public const string TreeRoot = "vmware-vix-disklib-distrib";

    public string User { get; init; } = "1001";

    public IReadOnlyList<string> Entrypoint { get; init; } = ["cp", "-r", "/" + TreeRoot, "/opt"];

    public required string VddkVersion { get; init; }

    public string? VddkBuildNumber { get; init; }

    /// <summary>
    /// The config's created time and the history entry's; derived from the archive (newest mtime, clamped to
    /// SOURCE_DATE_EPOCH) so that it never depends on when the build ran.
    /// </summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>Extra labels (merged after the standard ones).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}
