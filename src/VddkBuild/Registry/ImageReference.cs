using System.Net;
using System.Text.RegularExpressions;
using VddkBuild.Oci;

namespace VddkBuild.Registry;

/// <summary>
/// A registry image reference, <c>host[:port]/path[:tag][@digest]</c>, with Docker Hub's defaults
/// (<c>nginx</c> means <c>docker.io/library/nginx</c>). Grammar per the distribution reference rules: the first path
/// component is a registry host when it contains a dot or a colon, is <c>localhost</c>, or is an IPv6 literal.
/// </summary>
public sealed partial record ImageReference
{
    public const string DockerHub = "docker.io";

    /// <summary>Host Docker Hub's API is really served from.</summary>
    public const string DockerHubApiHost = "registry-1.docker.io";

    private const int MaxNameLength = 255;

    private ImageReference(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry as written, normalized: lowercase host, optional port (<c>docker.io</c>, <c>127.0.0.1:5000</c>, <c>[::1]:5000</c>).</summary>
    public string Registry { get; }

    /// <summary>The repository path inside the registry, e.g. <c>openshift-mtv/vddk</c>.</summary>
    public string Repository { get; }

    public string? Tag { get; }

    public Digest? Digest { get; }

    /// <summary>The authority HTTP requests go to (Docker Hub's API host for docker.io).</summary>
    public string ApiAuthority => Registry == DockerHub ? DockerHubApiHost : Registry;

    /// <summary>What to put after <c>/manifests/</c>: the digest when known, else the tag, else <c>latest</c>.</summary>
    public string ManifestReference => Digest?.Value ?? Tag ?? "latest";

    /// <summary>The host without port (no brackets for IPv6), for matching policy lists.</summary>
    public string HostName
    {
        get
        {
            if (Registry.StartsWith('['))
            {
                return Registry[1..Registry.IndexOf(']')];
            }
            var colon = Registry.LastIndexOf(':');
            return colon < 0 ? Registry : Registry[..colon];
        }
    }

    public ImageReference WithTag(string tag)
    {
        ValidateTag(tag);
        return new ImageReference(Registry, Repository, tag, null);
    }

    public ImageReference WithDigest(Digest digest) => new(Registry, Repository, Tag, digest);

    /// <summary>The same repository on the same registry without tag or digest.</summary>
    public ImageReference RepositoryOnly => new(Registry, Repository, null, null);

    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null ? string.Empty : ":" + Tag)}{(Digest is null ? string.Empty : "@" + Digest.Value.Value)}";

    /// <summary>Parses a full reference; throws VDDK3001 (or VDDK3007 for a bad tag) saying what is wrong.</summary>
    public static ImageReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var input = text.Trim();
        if (input.Length == 0)
        {
            throw Invalid(text, "it is empty");
        }
        if (input.Contains("://", StringComparison.Ordinal))
        {
            throw Invalid(text, "it contains a URL scheme; write host[:port]/repository[:tag] without http:// or https://");
        }
        if (input.Any(char.IsWhiteSpace))
        {
            throw Invalid(text, "it contains whitespace");
        }

        Digest? digest = null;
        var at = input.IndexOf('@');
        if (at >= 0)
        {
            var digestText = input[(at + 1)..];
            if (!Oci.Digest.TryParse(digestText, out var parsed))
            {
                throw Invalid(text, $"'{digestText}' is not a digest (expected sha256:<64 lowercase hex>)");
            }
            digest = parsed;
            input = input[..at];
        }

        string registry;
        string remainder;
        var slash = input.IndexOf('/');
        var first = slash < 0 ? string.Empty : input[..slash];
        if (slash >= 0 && LooksLikeRegistry(first))
        {
            registry = NormalizeRegistry(first, text);
            remainder = input[(slash + 1)..];
        }
        else
        {
            registry = DockerHub;
            remainder = input;
        }

        string? tag = null;
        var lastColon = remainder.LastIndexOf(':');
        if (lastColon >= 0)
        {
            tag = remainder[(lastColon + 1)..];
            remainder = remainder[..lastColon];
            ValidateTag(tag, text);
        }

        var repository = ValidateRepository(remainder, text);
        if (registry == DockerHub && !repository.Contains('/'))
        {
            repository = "library/" + repository;
        }
        if (registry.Length + 1 + repository.Length > MaxNameLength)
        {
            throw Invalid(text, $"the name is longer than {MaxNameLength} characters");
        }
        return new ImageReference(registry, repository, tag, digest);
    }

    /// <summary>
    /// Builds a reference from a registry host (<c>host[:port]</c>, which may be a single word such as
    /// <c>myregistry:5000</c> or <c>localhost</c>) and a repository path, as the MSBuild properties give them.
    /// </summary>
    public static ImageReference ForRepository(string registry, string repository)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(repository);
        var host = registry.Trim().TrimEnd('/');
        var whole = host + "/" + repository.Trim();
        if (host.Contains("://", StringComparison.Ordinal))
        {
            throw Invalid(whole, "the registry contains a URL scheme; give only host[:port]");
        }
        if (host.Length == 0 || host.Contains('/'))
        {
            throw Invalid(whole, $"'{registry}' is not a registry host; give host[:port], for example registry.example.com or 127.0.0.1:5000");
        }
        var normalized = NormalizeRegistry(host, whole);
        var repo = ValidateRepository(repository.Trim(), whole);
        if (normalized == DockerHub && !repo.Contains('/'))
        {
            repo = "library/" + repo;
        }
        return new ImageReference(normalized, repo, null, null);
    }

    /// <summary>Throws VDDK3007 unless <paramref name="tag"/> matches <c>[\w][\w.-]{0,127}</c>.</summary>
    public static void ValidateTag(string tag) => ValidateTag(tag, tag);

    private static void ValidateTag(string tag, string subject)
    {
        if (!TagPattern().IsMatch(tag))
        {
            throw new VddkException(ErrorCodes.TagInvalid,
                $"'{tag}' is not a valid image tag: a tag is 1 to 128 characters, letters, digits, '_', '.' and '-', and must not start with '.' or '-'.",
                subject);
        }
    }

    private static string ValidateRepository(string repository, string subject)
    {
        if (repository.Length == 0)
        {
            throw Invalid(subject, "the repository path is empty");
        }
        foreach (var component in repository.Split('/'))
        {
            if (component.Length == 0)
            {
                throw Invalid(subject, "the repository path has an empty component ('//' or a leading/trailing '/')");
            }
            if (component.Any(char.IsUpper))
            {
                throw Invalid(subject, $"repository component '{component}' contains uppercase letters; repository names must be lowercase");
            }
            if (!PathComponentPattern().IsMatch(component))
            {
                throw Invalid(subject, $"repository component '{component}' is invalid; use lowercase letters and digits, separated by '.', '_', '__' or '-'");
            }
        }
        return repository;
    }

    private static bool LooksLikeRegistry(string first) =>
        first.Contains('.') || first.Contains(':') || first == "localhost" || first.StartsWith('[')
        || first.Any(char.IsUpper);

    private static string NormalizeRegistry(string registry, string subject)
    {
        string host;
        string? port = null;
        if (registry.StartsWith('['))
        {
            var close = registry.IndexOf(']');
            if (close < 0 || !IPAddress.TryParse(registry[1..close], out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                throw Invalid(subject, $"'{registry}' is not a valid bracketed IPv6 address");
            }
            host = "[" + v6 + "]";
            var rest = registry[(close + 1)..];
            if (rest.Length > 0)
            {
                if (!rest.StartsWith(':'))
                {
                    throw Invalid(subject, $"unexpected text after the IPv6 address in '{registry}'");
                }
                port = rest[1..];
            }
        }
        else
        {
            var colon = registry.IndexOf(':');
            host = colon < 0 ? registry : registry[..colon];
            port = colon < 0 ? null : registry[(colon + 1)..];
            if (host.Any(char.IsUpper))
            {
                // Host names are case-insensitive; registries and credential files use lowercase.
                host = host.ToLowerInvariant();
            }
            if (!HostPattern().IsMatch(host))
            {
                throw Invalid(subject, $"'{host}' is not a valid registry host name");
            }
        }
        if (port is not null && (!int.TryParse(port, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) || p is < 1 or > 65535))
        {
            throw Invalid(subject, $"'{port}' is not a valid port number");
        }
        if (host is "index.docker.io" or "registry-1.docker.io" && port is null)
        {
            host = DockerHub;
        }
        return port is null ? host : host + ":" + port;
    }

    private static VddkException Invalid(string text, string reason) =>
        new(ErrorCodes.ImageReferenceInvalid,
            $"'{text}' is not a valid image reference: {reason}. Expected host[:port]/repository[:tag][@sha256:digest].",
            text);

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex PathComponentPattern();

    [GeneratedRegex(@"^(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])(?:\.(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9]))*$", RegexOptions.CultureInvariant)]
    private static partial Regex HostPattern();
}
