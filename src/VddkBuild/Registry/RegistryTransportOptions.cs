namespace VddkBuild.Registry;

/// <summary>
/// How the registry client connects: TLS trust, insecure hosts, timeouts and retries. Shared by pulls and pushes
/// of one run (one <see cref="RegistrySession"/>).
/// </summary>
public sealed record RegistryTransportOptions
{
    /// <summary>Environment variable the .NET SDK uses for plain-HTTP / self-signed registries (split on ';').</summary>
    public const string InsecureRegistriesVariable = "DOTNET_CONTAINER_INSECURE_REGISTRIES";

    /// <summary>
    /// A PEM file of CA certificates trusted in addition to the system store (VddkRegistryCaBundle). A file that is
    /// not PEM or holds no certificate fails with VDDK3008.
    /// </summary>
    public string? CaBundlePath { get; init; }

    /// <summary>
    /// CA certificates trusted in addition, obtained in-process (the cluster's ingress CA for its registry route);
    /// merged with <see cref="CaBundlePath"/>.
    /// </summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2Collection? TrustedCertificates { get; init; }

    /// <summary>
    /// Folders of per-registry TLS settings, as podman and docker read them (containers-certs.d(5)): the first that
    /// holds a folder named after a registry (<c>host[:port]</c>) supplies the CA certificates (<c>*.crt</c>) trusted
    /// for that registry in addition. <see cref="WithEnvironment"/> puts <c>$HOME/.config/containers/certs.d</c> first.
    /// </summary>
    public IReadOnlyList<string> CertificateDirectories { get; init; } = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

    /// <summary>
    /// Registries (<c>host[:port]</c>) for which plain HTTP and unverified TLS are allowed (VddkRegistryInsecure).
    /// Entries from <see cref="InsecureRegistriesVariable"/> are added by <see cref="WithEnvironment"/>.
    /// </summary>
    public IReadOnlyCollection<string> InsecureRegistries { get; init; } = [];

    /// <summary>Limit for one request without progress: time to response headers, or between reads of a body.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(100);

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The proxy, from HTTPS_PROXY/HTTP_PROXY/NO_PROXY read as Go reads them (as oc, podman and skopeo do); null: direct.</summary>
    public EnvironmentProxy? Proxy { get; init; } = EnvironmentProxy.FromEnvironment();

    public RetrySettings Retry { get; init; } = new();

    /// <summary>
    /// Adds the hosts listed in <c>DOTNET_CONTAINER_INSECURE_REGISTRIES</c>, and the user's own certificate directory
    /// (<c>$HOME/.config/containers/certs.d</c>, which podman reads first).
    /// </summary>
    public RegistryTransportOptions WithEnvironment(Func<string, string?>? getEnvironmentVariable = null)
    {
        var get = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        var result = this;
        var fromEnvironment = (get(InsecureRegistriesVariable) ?? string.Empty)
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (fromEnvironment.Length > 0)
        {
            result = result with { InsecureRegistries = [.. InsecureRegistries, .. fromEnvironment] };
        }
        var home = get("HOME");
        var userCertificates = string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".config", "containers", "certs.d");
        if (userCertificates is not null && !CertificateDirectories.Contains(userCertificates, StringComparer.Ordinal))
        {
            result = result with { CertificateDirectories = [userCertificates, .. CertificateDirectories] };
        }
        return result;
    }

    /// <summary>
    /// True when <paramref name="authority"/> (<c>host[:port]</c>) is listed as insecure. An entry without a port
    /// matches the host on any port. <c>localhost</c> is not implicitly insecure.
    /// </summary>
    public bool IsInsecure(string authority)
    {
        var target = authority.Trim().ToLowerInvariant();
        var targetHost = HostOf(target);
        foreach (var raw in InsecureRegistries)
        {
            var entry = raw.Trim().ToLowerInvariant();
            var scheme = entry.IndexOf("://", StringComparison.Ordinal);
            if (scheme >= 0)
            {
                entry = entry[(scheme + 3)..];
            }
            entry = entry.TrimEnd('/');
            if (entry.Length == 0)
            {
                continue;
            }
            if (entry == target || (HostOf(entry) == entry && entry == targetHost))
            {
                return true;
            }
        }
        return false;
    }

    private static string HostOf(string authority)
    {
        if (authority.StartsWith('['))
        {
            var close = authority.IndexOf(']');
            return close < 0 ? authority : authority[..(close + 1)];
        }
        var colon = authority.LastIndexOf(':');
        return colon < 0 ? authority : authority[..colon];
    }
}

/// <summary>Bounds of <see cref="RetryPolicy"/>.</summary>
public sealed record RetrySettings
{
    /// <summary>Attempts in total, including the first.</summary>
    public int MaxAttempts { get; init; } = 5;

    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Upper bound for a server's Retry-After; longer requests are cut to this.</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(60);
}
