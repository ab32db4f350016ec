using System.Globalization;
using System.Text.RegularExpressions;

namespace VddkBuild.Tasks;

/// <summary>Parses the string values MSBuild hands to tasks; a bad value is a VDDK5002 naming the property.</summary>
internal static partial class TaskProperties
{
    /// <summary>Bytes from "4294967296", "4GiB", "500MB", "64 KiB"; empty gives <paramref name="fallback"/>.</summary>
    public static long Size(string? value, string propertyName, long fallback)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }
        var match = SizePattern().Match(value.Trim());
        if (!match.Success)
        {
            throw Invalid(propertyName, value, "a size in bytes, optionally with a unit (KB, MB, GB, KiB, MiB, GiB, TiB), e.g. 8GiB");
        }
        var multiplier = match.Groups[2].Value.ToUpperInvariant() switch
        {
            "" or "B" => 1m,
            "KB" => 1e3m, "MB" => 1e6m, "GB" => 1e9m, "TB" => 1e12m,
            "KIB" => 1024m, "MIB" => 1024m * 1024, "GIB" => 1024m * 1024 * 1024, "TIB" => 1024m * 1024 * 1024 * 1024,
            _ => throw Invalid(propertyName, value, "a size with a known unit"),
        };
        // Limits are compared with long byte counts: a size beyond that (or beyond decimal) is a typo, not a limit.
        const decimal largest = long.MaxValue;
        if (!decimal.TryParse(match.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)
            || number > largest / multiplier
            || decimal.Round(number * multiplier) is var bytes && bytes > largest)
        {
            throw Invalid(propertyName, value, $"a size of at most {long.MaxValue} bytes (8 EiB), e.g. 8GiB");
        }
        return (long)bytes;
    }

    public static int Count(string? value, string propertyName, int fallback)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }
        return int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count > 0
            ? count
            : throw Invalid(propertyName, value, "a positive whole number");
    }

    public static bool Flag(string? value, string propertyName, bool fallback = false)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }
        return value.Trim().ToLowerInvariant() switch
        {
            "true" or "yes" or "1" or "on" => true,
            "false" or "no" or "0" or "off" => false,
            _ => throw Invalid(propertyName, value, "true or false"),
        };
    }

    /// <summary>SOURCE_DATE_EPOCH: seconds since 1970-01-01 UTC.</summary>
    public static DateTimeOffset? Epoch(string? value, string propertyName)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        return long.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds <= 253402300799
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : throw Invalid(propertyName, value, "whole seconds since 1970-01-01 UTC (the SOURCE_DATE_EPOCH convention)");
    }

    /// <summary>
    /// The image's User as runtimes read it: a user, or user:group, each a name or a numeric id. A space or a second
    /// ':' is no user any runtime can find, and the image would fail only when Forklift starts its init container.
    /// </summary>
    public static string ImageUser(string? value, string propertyName)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return "1001";
        }
        var user = value.Trim();
        return UserPattern().IsMatch(user)
            ? user
            : throw Invalid(propertyName, value, "a user name or numeric id, optionally followed by ':' and a group name or id (for example 1001, 1001:0 or default)");
    }

    /// <summary>VddkImageFormat: OCI or Docker (any case); empty is automatic (null).</summary>
    public static Images.ImageFormat? ImageFormat(string? value, string propertyName)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        return value.Trim().ToUpperInvariant() switch
        {
            "OCI" => Images.ImageFormat.Oci,
            "DOCKER" => Images.ImageFormat.Docker,
            _ => throw Invalid(propertyName, value,
                "OCI (an OCI image manifest) or Docker (a Docker image manifest v2, schema 2, for registries that refuse OCI), or empty to push OCI and fall back to Docker when the registry refuses it"),
        };
    }

    /// <summary>A ';'-separated list with blanks and duplicates removed, order kept.</summary>
    public static IReadOnlyList<string> List(string? value) =>
        (value ?? string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct(StringComparer.Ordinal).ToList();

    public static string Required(string? value, string propertyName, string howToSet) =>
        string.IsNullOrWhiteSpace(value)
            ? throw new VddkException(ErrorCodes.PropertyMissing, $"{propertyName} is not set. {howToSet}", propertyName)
            : value.Trim();

    private static VddkException Invalid(string propertyName, string value, string expected) =>
        new(ErrorCodes.PropertyInvalid, $"{propertyName} is '{value}', but it must be {expected}.", propertyName);

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?)?$")]
    private static partial Regex UserPattern();

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$")]
    private static partial Regex SizePattern();
}
