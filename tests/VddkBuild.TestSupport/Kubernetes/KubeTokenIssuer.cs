using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>A service account token the loopback server issued through TokenRequest.</summary>
public sealed record IssuedServiceAccountToken(string Token, string Namespace, string ServiceAccount, DateTimeOffset ExpiresAt, IReadOnlyList<string> Audiences)
{
    public string UserName => $"system:serviceaccount:{Namespace}:{ServiceAccount}";

    public IReadOnlyList<string> Groups => ["system:serviceaccounts", $"system:serviceaccounts:{Namespace}", "system:authenticated"];

    /// <summary>Never print the token itself.</summary>
    public override string ToString() => $"token for {UserName} until {ExpiresAt:O}";
}

/// <summary>
/// Issues service account tokens (JWT-shaped, HMAC-signed with a key that never leaves the process) and remembers
/// them with their expiry, so the API server and an image registry auth front can both validate them.
/// </summary>
public sealed class KubeTokenIssuer
{
    private readonly ConcurrentDictionary<string, IssuedServiceAccountToken> _tokens = new(StringComparer.Ordinal);
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly TimeProvider _clock;

    public KubeTokenIssuer(TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
    }

    public IReadOnlyCollection<IssuedServiceAccountToken> Issued => _tokens.Values.ToList();

    public IssuedServiceAccountToken Issue(string ns, string serviceAccount, TimeSpan lifetime, IReadOnlyList<string> audiences)
    {
        var now = _clock.GetUtcNow();
        var expires = now + lifetime;
        var payload = new JsonObject
        {
            ["iss"] = "https://kubernetes.default.svc",
            ["sub"] = $"system:serviceaccount:{ns}:{serviceAccount}",
            ["aud"] = new JsonArray(audiences.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = expires.ToUnixTimeSeconds(),
            ["jti"] = Guid.NewGuid().ToString(),
            ["kubernetes.io"] = new JsonObject
            {
                ["namespace"] = ns,
                ["serviceaccount"] = new JsonObject { ["name"] = serviceAccount },
            },
        };
        var unsigned = $"{Base64Url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"u8.ToArray())}.{Base64Url(Encoding.UTF8.GetBytes(payload.ToJsonString()))}";
        var signature = Base64Url(HMACSHA256.HashData(_key, Encoding.ASCII.GetBytes(unsigned)));
        var issued = new IssuedServiceAccountToken($"{unsigned}.{signature}", ns, serviceAccount, expires, audiences);
        _tokens[issued.Token] = issued;
        return issued;
    }

    /// <summary>The token's record when this issuer issued it and it has not expired; null otherwise.</summary>
    public IssuedServiceAccountToken? Validate(string token)
    {
        return _tokens.TryGetValue(token, out var issued) && issued.ExpiresAt > _clock.GetUtcNow() ? issued : null;
    }

    /// <summary>True when the token was issued here but has expired (a client should request a new one).</summary>
    public bool IsExpired(string token) => _tokens.TryGetValue(token, out var issued) && issued.ExpiresAt <= _clock.GetUtcNow();

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
