using System.Text.RegularExpressions;

namespace VddkBuild.Archive;

/// <summary>
/// Version and build number as VMware writes them into the archive's file name:
/// <c>VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz</c> (VDDK 7/8) or
/// <c>VMware-vix-disklib-9.0.0.0.24742305.x86_64.tar.gz</c> (VDDK 9). The name is only a hint: the version is
/// confirmed from the archive's contents, and a renamed file is fine.
/// </summary>
/// <param name="Version">Three or four dot-separated numbers, e.g. "8.0.1" or "9.0.0.0".</param>
/// <param name="BuildNumber">The build number, e.g. "21562716"; null when the name does not carry one.</param>
public sealed partial record VddkArchiveName(string Version, string? BuildNumber)
{
    /// <summary>
    /// The architecture the name states ("x86_64", "aarch64", ...), lower case; null when it states none. Only a hint:
    /// the library's own ELF header decides (see <see cref="VddkTreeChecks"/>).
    /// </summary>
    public string? Architecture { get; init; }

    /// <summary>First version component ("8" for 8.0.1): nbdkit dlopens <c>libvixDiskLib.so.&lt;major&gt;</c>.</summary>
    public string Major => Version.Split('.')[0];

    /// <summary>
    /// Parses a file name (a path is fine; only its last part is used). Returns null when the name does not follow
    /// VMware's naming, which is not an error: the archive may simply have been renamed.
    /// </summary>
    public static VddkArchiveName? TryParse(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        var name = Path.GetFileName(fileName);
        var match = WithBuildNumber().Match(name);
        if (!match.Success)
        {
            match = WithoutBuildNumber().Match(name);
            if (!match.Success)
            {
                return null;
            }
        }
        // What follows the version and build is only read for the architecture: copies and re-downloads append to
        // it in many ways (" (1)", "(1)", " - Copy", " copy", "-2", ".1", ".part" moved away...), none of which
        // changes what the name says about the VDDK.
        var architecture = ArchitectureTag().Match(name, match.Length);
        return new VddkArchiveName(match.Groups["version"].Value, match.Groups["build"].Success ? match.Groups["build"].Value : null)
        {
            Architecture = architecture.Success ? architecture.Value.ToLowerInvariant().Replace('-', '_') : null,
        };
    }

    /// <summary>Convenience overload in Try-pattern form.</summary>
    public static bool TryParse(string fileName, out string version, out string? buildNumber)
    {
        var parsed = TryParse(fileName);
        version = parsed?.Version ?? string.Empty;
        buildNumber = parsed?.BuildNumber;
        return parsed is not null;
    }

    /// <summary>
    /// The name VMware would give this version and build: a '-' before the build number up to VDDK 8, a '.' from
    /// VDDK 9 on (the four-part versions). Used by fixtures and to suggest the expected name in messages.
    /// </summary>
    public string ToFileName(string extension = ".tar.gz")
    {
        if (BuildNumber is null)
        {
            return $"VMware-vix-disklib-{Version}.x86_64{extension}";
        }
        var separator = Version.Split('.').Length >= 4 ? '.' : '-';
        return $"VMware-vix-disklib-{Version}{separator}{BuildNumber}.x86_64{extension}";
    }

    /// <summary>
    /// True when both versions agree on every component they both have: "9.0.0" and "9.0.0.0" are compatible,
    /// "8.0.1" and "8.0.3" are not.
    /// </summary>
    public static bool AreCompatible(string a, string b)
    {
        var left = a.Split('.');
        var right = b.Split('.');
        for (var i = 0; i < Math.Min(left.Length, right.Length); i++)
        {
            if (!string.Equals(left[i].TrimStart('0').PadLeft(1, '0'), right[i].TrimStart('0').PadLeft(1, '0'), StringComparison.Ordinal))
            {
                return false;
            }
        }
        return true;
    }

    // Build numbers have at least four digits, which keeps "9.0.0.0" from being read as version 9.0.0 build 0. The name
    // must start like VMware's; anything may follow the version and build (an architecture tag, an extension, and
    // whatever browsers, wget, file managers and users append to a copy: "x86_64 (1).tar.gz", "x86_64(1).tar.gz",
    // "tar.gz.1", "x86_64.tar - Copy.gz"), as long as no further digit continues the build number or the version.
    [GeneratedRegex(@"^VMware-vix-disklib-(?<version>\d+(?:\.\d+){2,3})[-.](?<build>\d{4,})(?![\d])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex WithBuildNumber();

    [GeneratedRegex(@"^VMware-vix-disklib-(?<version>\d+(?:\.\d+){2,3})(?![\d]|\.\d)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex WithoutBuildNumber();

    [GeneratedRegex(@"(?<![A-Za-z0-9])(?:x86_64|x86-64|amd64|aarch64|arm64|i386|i686)(?![A-Za-z0-9])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ArchitectureTag();
}
