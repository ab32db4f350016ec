using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace VddkBuild.TestSupport.Registry;

/// <summary>One request the token server received (the password is never kept).</summary>
public sealed record TokenRequestRecord(string Method, string? User, bool PasswordAccepted, IReadOnlyList<string> Scopes);

/// <summary>
/// A token endpoint for docker-registry's <c>auth.token</c>: GET <c>/token?service=&amp;scope=</c> with optional
/// Basic auth answers <c>{"token","access_token","expires_in"}</c> with an ES256 JWT whose <c>x5c</c> header holds a
/// self-signed certificate; that certificate is the registry's <c>rootcertbundle</c>. Authenticated users get the
/// actions they ask for (or what <see cref="Grant"/> decides); anonymous callers get none.
/// </summary>
public sealed class TestTokenServer : IAsyncDisposable
{
    public const string Service = "vddk-test-registry";
    public const string Issuer = "vddk-test-token-issuer";

    private readonly IReadOnlyDictionary<string, string> _users;
    private readonly ECDsa _key;
    private readonly X509Certificate2 _certificate;
    private readonly ConcurrentQueue<TokenRequestRecord> _requests = new();
    private LoopbackWebServer? _server;

    private TestTokenServer(string directory, IReadOnlyDictionary<string, string> users, TimeSpan lifetime)
    {
        _users = users;
        TokenLifetime = lifetime;
        _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=VddkBuild test token signer", _key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        var now = DateTimeOffset.UtcNow.AddMinutes(-5);
        _certificate = request.CreateSelfSigned(now, now.AddDays(2));
        Directory.CreateDirectory(directory);
        RootCertBundlePath = Path.Combine(directory, "token-signer.crt");
        File.WriteAllText(RootCertBundlePath, _certificate.ExportCertificatePem() + "\n");
    }

    public string RootCertBundlePath { get; }

    public TimeSpan TokenLifetime { get; set; }

    /// <summary>
    /// docker-registry accepts a token until 60 s after its <c>exp</c> claim (clock-skew leeway). When set, tokens
    /// really stop working at the registry this long after issue (their <c>exp</c> is moved back by the leeway)
    /// while <c>expires_in</c> still states <see cref="TokenLifetime"/>: a token that expires or is revoked before
    /// the client expects, which the client only learns from a 401.
    /// </summary>
    public TimeSpan? RejectedByRegistryAfter { get; set; }

    /// <summary>docker-registry's leeway on <c>exp</c> and <c>nbf</c> (distribution's <c>token.Leeway</c>).</summary>
    public static readonly TimeSpan RegistryLeeway = TimeSpan.FromSeconds(60);

    /// <summary>Tokens issued so far.</summary>
    public int Issued => Volatile.Read(ref _issued);

    private int _issued;

    public string Realm => new Uri(_server!.BaseUri, "token").AbsoluteUri;

    public RegistryTokenSettings Settings => new(Realm, Service, Issuer, RootCertBundlePath);

    public IReadOnlyList<TokenRequestRecord> Requests => [.. _requests];

    /// <summary>Decides the actions granted: (user or null, repository, requested actions) -> granted actions.</summary>
    public Func<string?, string, IReadOnlyList<string>, IReadOnlyList<string>> Grant { get; set; } =
        (user, _, actions) => user is null ? [] : actions;

    public static async Task<TestTokenServer> StartAsync(string directory, IReadOnlyDictionary<string, string> users, TimeSpan? tokenLifetime = null)
    {
        var server = new TestTokenServer(directory, users, tokenLifetime ?? TimeSpan.FromMinutes(5));
        server._server = await LoopbackWebServer.StartAsync(server.HandleAsync);
        return server;
    }

    /// <summary>
    /// Identity (refresh) tokens the server accepts on the OAuth2 refresh-token grant (POST <c>/token</c>,
    /// <c>grant_type=refresh_token</c>, space-separated <c>scope</c>), each mapped to its user.
    /// </summary>
    public Dictionary<string, string> RefreshTokens { get; } = new(StringComparer.Ordinal);

    private async Task HandleAsync(HttpContext context)
    {
        var scopes = context.Request.Query["scope"].Where(s => !string.IsNullOrEmpty(s)).Select(s => s!).ToList();
        string? user = null;
        var accepted = false;
        var authorization = context.Request.Headers.Authorization.ToString();
        if (context.Request.Method == "POST" && context.Request.HasFormContentType)
        {
            var form = await context.Request.ReadFormAsync();
            if (form["grant_type"] != "refresh_token" || form["service"] != Service)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync("{\"error\":\"unsupported_grant_type\"}");
                return;
            }
            scopes = [.. form["scope"].SelectMany(s => (s ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries))];
            accepted = RefreshTokens.TryGetValue(form["refresh_token"].ToString(), out user);
            user ??= "(unknown refresh token)";
        }
        else if (authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim()));
            var colon = decoded.IndexOf(':');
            user = decoded[..colon];
            accepted = _users.TryGetValue(user, out var password) && password == decoded[(colon + 1)..];
        }
        _requests.Enqueue(new TokenRequestRecord(context.Request.Method, user, accepted, scopes));
        if (context.Request.Method is not ("GET" or "POST") || context.Request.Path.Value?.TrimEnd('/') != "/token")
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }
        if (user is not null && !accepted)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            await context.Response.WriteAsync("{\"details\":\"incorrect username or password\"}");
            return;
        }
        var access = new JsonArray();
        foreach (var scope in scopes.SelectMany(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
        {
            var first = scope.IndexOf(':');
            var last = scope.LastIndexOf(':');
            if (first < 0 || last <= first)
            {
                continue;
            }
            var type = scope[..first];
            var name = scope[(first + 1)..last];
            var actions = scope[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries);
            var granted = Grant(accepted ? user : null, name, actions);
            access.Add(new JsonObject { ["type"] = type, ["name"] = name, ["actions"] = new JsonArray([.. granted.Select(a => (JsonNode)a)]) });
        }
        var token = CreateJwt(accepted ? user! : string.Empty, access);
        Interlocked.Increment(ref _issued);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject
        {
            ["token"] = token,
            ["access_token"] = token,
            ["expires_in"] = (int)TokenLifetime.TotalSeconds,
            ["issued_at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
        }.ToJsonString());
    }

    private string CreateJwt(string subject, JsonArray access)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new JsonObject
        {
            ["typ"] = "JWT",
            ["alg"] = "ES256",
            ["x5c"] = new JsonArray(Convert.ToBase64String(_certificate.RawData)),
        };
        var claims = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Service,
            ["exp"] = RejectedByRegistryAfter is { } early
                ? now + (long)Math.Ceiling(early.TotalSeconds) - (long)RegistryLeeway.TotalSeconds
                : now + (long)Math.Max(1, TokenLifetime.TotalSeconds),
            ["nbf"] = now - 30 - (RejectedByRegistryAfter is null ? 0 : (long)RegistryLeeway.TotalSeconds),
            ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = access,
        };
        var signingInput = Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        // JWS ES256 signatures are r||s (IEEE P1363), .NET's default format.
        var signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256);
        return signingInput + "." + Base64Url(signature);
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        _key.Dispose();
        _certificate.Dispose();
    }
}
