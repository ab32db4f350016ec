using System.Collections.Concurrent;

namespace VddkBuild.Registry;

/// <summary>
/// Bearer tokens per registry, token service and scope set, until shortly before they expire. A token the registry
/// rejected is dropped so the next request asks for a new one.
/// </summary>
public sealed class BearerTokenCache(TimeProvider? timeProvider = null)
{
    /// <summary>Tokens are renewed this long before their stated expiry, to survive clock skew and slow requests.</summary>
    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(10);

    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);

    public static string Key(string registry, string? realm, string? service, IEnumerable<string> scopes) =>
        $"{registry}|{realm}|{service}|{string.Join(' ', scopes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))}";

    public bool TryGet(string key, out string token)
    {
        if (_tokens.TryGetValue(key, out var entry) && _time.GetUtcNow() < entry.Expires)
        {
            token = entry.Token;
            return true;
        }
        token = string.Empty;
        return false;
    }

    /// <summary>Keeps a token; the renewal margin shrinks for short-lived tokens so that they are still reused.</summary>
    public void Store(string key, string token, TimeSpan lifetime)
    {
        var margin = lifetime / 4 < Margin ? lifetime / 4 : Margin;
        _tokens[key] = (token, _time.GetUtcNow() + lifetime - margin);
    }

    /// <summary>Drops <paramref name="token"/> if it is still the cached one for <paramref name="key"/>.</summary>
    public void Invalidate(string key, string token)
    {
        if (_tokens.TryGetValue(key, out var entry) && entry.Token == token)
        {
            _tokens.TryRemove(new KeyValuePair<string, (string, DateTimeOffset)>(key, entry));
        }
    }
}
