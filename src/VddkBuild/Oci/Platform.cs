using System.Text.Json.Serialization;

namespace VddkBuild.Oci;

/// <summary>An image platform, written <c>os/arch[/variant]</c> (e.g. linux/amd64, linux/arm64/v8).</summary>
public sealed record Platform
{
    public static readonly Platform LinuxAmd64 = new() { Os = "linux", Architecture = "amd64" };

    [JsonPropertyName("architecture")]
    public required string Architecture { get; init; }

    [JsonPropertyName("os")]
    public required string Os { get; init; }

    [JsonPropertyName("os.version")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? OsVersion { get; init; }

    [JsonPropertyName("variant")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Variant { get; init; }

    /// <summary>Parses <c>os/arch[/variant]</c>; throws VDDK2008 otherwise.</summary>
    public static Platform Parse(string text)
    {
        var parts = text.Trim().Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
        {
            throw new VddkException(ErrorCodes.PlatformInvalid,
                $"'{text}' is not a platform. Write it as os/architecture[/variant], for example linux/amd64 or linux/arm64/v8.", text);
        }
        return new Platform { Os = parts[0].ToLowerInvariant(), Architecture = parts[1].ToLowerInvariant(), Variant = parts.Length == 3 ? parts[2].ToLowerInvariant() : null };
    }

    /// <summary>
    /// True when <paramref name="candidate"/> (from an index) satisfies this requested platform. A request without a
    /// variant accepts any variant, except that arm64 prefers v8 and a missing variant; the selection code orders ties.
    /// </summary>
    public bool Matches(Platform candidate) =>
        string.Equals(Os, candidate.Os, StringComparison.OrdinalIgnoreCase)
        && string.Equals(Architecture, candidate.Architecture, StringComparison.OrdinalIgnoreCase)
        && (Variant is null || string.Equals(Variant, candidate.Variant ?? DefaultVariant(candidate.Architecture), StringComparison.OrdinalIgnoreCase));

    private static string? DefaultVariant(string architecture) => architecture == "arm64" ? "v8" : null;

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}
