using System.Text;
using System.Text.Json;

namespace VddkBuild.Registry;

/// <summary>
/// One parsed credential file in Docker's format (<c>~/.docker/config.json</c>) or podman's (<c>auth.json</c>, the
/// same shape): <c>auths</c> (base64 <c>user:password</c> in <c>auth</c>, or <c>username</c>/<c>password</c>, or an
/// <c>identitytoken</c>, which wins over both as in docker: user <see cref="RegistryCredential.IdentityTokenUser"/>),
/// <c>credHelpers</c> (registry -> helper name) and <c>credsStore</c> (helper for all registries).
/// Keys may be written with a scheme and path (<c>https://index.docker.io/v1/</c>, as docker writes them: the host
/// alone counts), or, as podman writes them, as a host or a namespace of it (<c>quay.io/organization</c>), whose
/// credentials serve that namespace only; the most specific key wins, as containers-auth.json(5) describes.
/// </summary>
public sealed class DockerConfigCredentials
{
    private readonly Dictionary<string, (string User, string Secret)> _auths;
    private readonly Dictionary<string, string> _helpers;
    private readonly HashSet<string> _unreadableAuths;

    private DockerConfigCredentials(string path, Dictionary<string, (string, string)> auths, Dictionary<string, string> helpers, string? store, HashSet<string> unreadableAuths)
    {
        Path = path;
        _auths = auths;
        _helpers = helpers;
        CredsStore = store;
        _unreadableAuths = unreadableAuths;
    }

    public string Path { get; }

    public string? CredsStore { get; }

    /// <summary>Parses file content; malformed JSON throws VDDK3012 naming the file (never its content).</summary>
    public static DockerConfigCredentials Parse(string json, string path)
    {
        var auths = new Dictionary<string, (string, string)>(StringComparer.OrdinalIgnoreCase);
        var helpers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var unreadable = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        string? store = null;
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new VddkException(ErrorCodes.CredentialHelperFailed,
                    $"The credential file '{path}' is not a JSON object (its top level is a JSON {root.ValueKind.ToString().ToLowerInvariant()}). Fix or remove it, or log in again.", path);
            }
            if (root.TryGetProperty("auths", out var authsElement) && authsElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in authsElement.EnumerateObject())
                {
                    if (entry.Value.ValueKind == JsonValueKind.Object && TryReadEntry(entry.Value, out var user, out var secret))
                    {
                        auths[AuthKey(entry.Name)] = (user, secret);
                    }
                    else if (entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("auth", out var auth)
                        && auth.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(auth.GetString()))
                    {
                        // Docker and podman refuse such an entry rather than going on without credentials.
                        unreadable.Add(AuthKey(entry.Name));
                    }
                }
            }
            if (root.TryGetProperty("credHelpers", out var helpersElement) && helpersElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var entry in helpersElement.EnumerateObject())
                {
                    if (entry.Value.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(entry.Value.GetString()))
                    {
                        helpers[NormalizeKey(entry.Name)] = entry.Value.GetString()!;
                    }
                }
            }
            if (root.TryGetProperty("credsStore", out var storeElement) && storeElement.ValueKind == JsonValueKind.String
                && !string.IsNullOrWhiteSpace(storeElement.GetString()))
            {
                store = storeElement.GetString();
            }
        }
        catch (JsonException ex)
        {
            // JsonException messages quote positions, not values; still, do not echo the file's content.
            throw new VddkException(ErrorCodes.CredentialHelperFailed,
                $"The credential file '{path}' is not valid JSON (line {ex.LineNumber + 1}). Fix or remove it, or log in again.", path, ex);
        }
        return new DockerConfigCredentials(path, auths, helpers, store, unreadable);
    }

    public static DockerConfigCredentials? TryLoad(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.CredentialHelperFailed, $"The credential file '{path}' cannot be read: {ex.Message}", path, ex);
        }
        return Parse(json, path);
    }

    /// <summary>
    /// The stored user name and secret for <paramref name="repository"/> of <paramref name="registry"/> (or the
    /// registry as a whole when null), if an <c>auths</c> entry has them: the repository's own key, then each of its
    /// parent namespaces, then the registry's (<c>quay.io/org/name</c>, <c>quay.io/org</c>, <c>quay.io</c>). An entry
    /// whose <c>auth</c> is not base64 of <c>user:password</c> is VDDK3012 (naming the file and key, not the value).
    /// </summary>
    public (string User, string Secret)? FindAuth(string registry, string? repository = null)
    {
        var host = NormalizeKey(registry);
        for (var path = string.IsNullOrEmpty(repository) ? null : repository.Trim('/'); ; path = path.LastIndexOf('/') is > 0 and var slash ? path[..slash] : null)
        {
            var key = path is null ? host : host + "/" + path;
            if (_auths.TryGetValue(key, out var value))
            {
                return value;
            }
            if (_unreadableAuths.Contains(key))
            {
                throw new VddkException(ErrorCodes.CredentialHelperFailed,
                    $"The credential file '{Path}' has an entry for {key} whose 'auth' is not the base64 of 'user:password'. Log in again (podman login / docker login), or fix or remove that entry.", Path);
            }
            if (path is null)
            {
                return null;
            }
        }
    }

    /// <summary>The credential helper for <paramref name="registry"/> (<c>credHelpers</c> first, then <c>credsStore</c>).</summary>
    public string? FindHelper(string registry) =>
        _helpers.TryGetValue(NormalizeKey(registry), out var helper) ? helper : null;

    /// <summary>
    /// Reduces a key or registry to <c>host[:port]</c>, lowercase, without scheme or path; Docker Hub's aliases
    /// all become <c>docker.io</c>.
    /// </summary>
    public static string NormalizeKey(string key)
    {
        var value = key.Trim();
        var scheme = value.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            value = value[(scheme + 3)..];
        }
        var slash = value.IndexOf('/');
        if (slash >= 0)
        {
            value = value[..slash];
        }
        value = value.ToLowerInvariant();
        return value is "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" ? ImageReference.DockerHub : value;
    }

    /// <summary>
    /// An <c>auths</c> key as podman reads it: with a scheme (docker's form) the host alone; without, the host and
    /// the namespace it names, if any (<c>quay.io/organization</c>).
    /// </summary>
    internal static string AuthKey(string key)
    {
        var value = key.Trim();
        if (value.Contains("://", StringComparison.Ordinal))
        {
            return NormalizeKey(value);
        }
        var slash = value.IndexOf('/');
        var path = slash < 0 ? string.Empty : value[(slash + 1)..].Trim('/');
        return path.Length == 0 ? NormalizeKey(value) : NormalizeKey(value[..slash]) + "/" + path;
    }

    private static bool TryReadEntry(JsonElement entry, out string user, out string secret)
    {
        user = string.Empty;
        secret = string.Empty;
        if (entry.TryGetProperty("identitytoken", out var identity) && identity.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(identity.GetString()))
        {
            user = RegistryCredential.IdentityTokenUser;
            secret = identity.GetString()!;
            return true;
        }
        if (entry.TryGetProperty("auth", out var auth) && auth.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(auth.GetString()))
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth.GetString()!));
            }
            catch (FormatException)
            {
                return false;
            }
            var colon = decoded.IndexOf(':');
            if (colon <= 0)
            {
                return false;
            }
            user = decoded[..colon];
            secret = decoded[(colon + 1)..];
            return secret.Length > 0;
        }
        if (entry.TryGetProperty("username", out var u) && u.ValueKind == JsonValueKind.String
            && entry.TryGetProperty("password", out var p) && p.ValueKind == JsonValueKind.String
            && !string.IsNullOrEmpty(u.GetString()) && !string.IsNullOrEmpty(p.GetString()))
        {
            user = u.GetString()!;
            secret = p.GetString()!;
            return true;
        }
        return false;
    }
}
