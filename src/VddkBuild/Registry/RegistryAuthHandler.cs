using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Authenticates requests to one registry. The first 401 reveals the scheme (Basic, or Bearer with realm/service/
/// scope); from then on requests carry credentials up front, so request bodies (streamed blobs) are sent once. The
/// challenge is remembered per repository: one host may serve repositories with their own token endpoints
/// (Artifactory's repository path method, Nexus' path-based routing), and a base layer read from one while it is
/// streamed to another must carry, each way, what its own repository asked for.
/// A 401 on a request that can be replayed triggers one re-authentication (fresh token) and one resend; a 401 on a
/// streamed upload only drops the token, and the upload is retried from its start by <see cref="RetryPolicy"/>.
/// </summary>
internal sealed class RegistryAuthHandler : DelegatingHandler
{
    private readonly string _registry;
    private readonly ICredentialProvider _credentials;
    private readonly BearerTokenCache _tokens;
    private readonly BearerTokenClient _tokenClient;
    private readonly SemaphoreSlim _fetchGate = new(1, 1);
    private readonly ConcurrentDictionary<string, AuthChallenge> _challenges = new(StringComparer.Ordinal);

    /// <summary>The last challenge of any repository: a repository not challenged yet most likely asks the same.</summary>
    private volatile AuthChallenge? _lastChallenge;

    public RegistryAuthHandler(HttpMessageHandler inner, string registry, ICredentialProvider credentials, BearerTokenCache tokens, BearerTokenClient tokenClient)
        : base(inner)
    {
        _registry = registry;
        _credentials = credentials;
        _tokens = tokens;
        _tokenClient = tokenClient;
    }

    /// <summary>The scheme the request was sent with (<c>Basic</c>, <c>Bearer</c>), unset when sent anonymously.</summary>
    public static readonly HttpRequestOptionsKey<string> SentScheme = new("VddkBuild.SentScheme");

    /// <summary>Set when a 401 came without a Basic or Bearer challenge (<c>WWW-Authenticate</c>).</summary>
    public static readonly HttpRequestOptionsKey<bool> NoChallenge = new("VddkBuild.NoChallenge");

    /// <summary>The credential used, for messages (never the secret).</summary>
    public static readonly HttpRequestOptionsKey<RegistryCredential?> UsedCredential = new("VddkBuild.UsedCredential");

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var context = request.Options.TryGetValue(RegistryRequestContext.Key, out var c) ? c : new RegistryRequestContext([], RegistryPurpose.Pull);
        var repository = context.Repository ?? string.Empty;
        var applied = (_challenges.TryGetValue(repository, out var own) ? own : _lastChallenge) is { } known
            ? await ApplyAsync(request, known, context, rejectedToken: null, cancellationToken).ConfigureAwait(false)
            : null;
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized)
        {
            return response;
        }

        var challenge = AuthChallenge.FromResponse(response).FirstOrDefault(ch => ch.IsBearer || ch.IsBasic)?.ResolveRealm(request.RequestUri!);
        if (challenge is null)
        {
            // Nothing says how to authenticate: the message must not claim credentials are missing.
            request.Options.Set(NoChallenge, true);
            return response;
        }
        _challenges[repository] = challenge;
        _lastChallenge = challenge;
        if (applied?.Token is { } rejected)
        {
            _tokens.Invalidate(applied.CacheKey, rejected);
        }
        if (!CanReplay(request) || (applied is not null && applied.Token is null))
        {
            // A streamed body cannot be sent twice; Basic credentials that were refused will be refused again.
            return response;
        }
        var reapplied = await ApplyAsync(request, challenge, context, rejectedToken: applied?.Token ?? string.Empty, cancellationToken).ConfigureAwait(false);
        if (reapplied is null)
        {
            // No credentials for a Basic challenge: nothing better to send.
            return response;
        }
        response.Dispose();
        var second = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (second.StatusCode == HttpStatusCode.Unauthorized && reapplied.Token is { } alsoRejected)
        {
            _tokens.Invalidate(reapplied.CacheKey, alsoRejected);
        }
        return second;
    }

    private static bool CanReplay(HttpRequestMessage request) =>
        request.Content is null or ByteArrayContent;

    private sealed record Applied(string CacheKey, string? Token);

    /// <param name="rejectedToken">
    /// Null: use a cached token if there is one. Otherwise the token that was just refused (empty: none was sent);
    /// a different cached token (another request renewed it meanwhile) is used, else a new one is fetched.
    /// </param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<Applied?> ApplyAsync(HttpRequestMessage request, AuthChallenge challenge, RegistryRequestContext context, string? rejectedToken, CancellationToken cancellationToken)
    {
        var credential = await _credentials.GetCredentialAsync(_registry, context.Repository, context.Purpose, cancellationToken).ConfigureAwait(false);
        request.Options.Set(UsedCredential, credential);
        if (challenge.IsBasic)
        {
            if (credential is null)
            {
                return null;
            }
            if (credential.IsIdentityToken)
            {
                throw new VddkException(ErrorCodes.RegistryAuthFailed,
                    $"Registry {_registry} asks for a user name and password (Basic), but the credential from {credential.Source} is an identity token, which only a token endpoint (Bearer) can use. Log in to {_registry} with a user name and password or access token.",
                    _registry);
            }
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", credential.ToBasicParameter());
            request.Options.Set(SentScheme, "Basic");
            return new Applied(string.Empty, null);
        }

        // OpenShift issues one token per identity whatever the scope: cache it per registry. Elsewhere the request
        // states the scopes it needs, and the challenge's scopes are asked for too when they name more than that (a
        // registry whose access rules use another repository name or action answers insufficient_scope naming them;
        // go-containerregistry adds them, first, as some token services read only the first scope).
        IReadOnlyList<string> scopes = challenge.IsOpenShift ? []
            : context.Scopes.Count > 0 ? [.. challenge.Scopes.Where(wanted => !Covers(context.Scopes, wanted)).Distinct(StringComparer.Ordinal), .. context.Scopes]
            : challenge.Scopes;
        var unscoped = challenge with { Parameters = challenge.Parameters.Where(p => !p.Key.Equals("scope", StringComparison.OrdinalIgnoreCase)).ToDictionary(StringComparer.OrdinalIgnoreCase) };
        var key = BearerTokenCache.Key(_registry + "|" + context.Purpose, challenge.Realm, challenge.Service, scopes);
        if (!_tokens.TryGet(key, out var token) || token == rejectedToken)
        {
            // One fetch at a time: parallel uploads that meet the same challenge share the token it yields.
            await _fetchGate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!_tokens.TryGet(key, out token) || token == rejectedToken)
                {
                    TimeSpan lifetime;
                    try
                    {
                        (token, lifetime) = await _tokenClient.GetTokenAsync(_registry, unscoped, scopes, credential, cancellationToken).ConfigureAwait(false);
                    }
                    catch (VddkException ex) when (ex.Code == ErrorCodes.RegistryAuthFailed && credential is not null && _credentials is CredentialChain)
                    {
                        // An expiring credential (a 10-minute service-account token) may be renewed in-process: try once more.
                        var renewed = await ((CredentialChain)_credentials).RefreshAsync(_registry, context.Purpose, credential, cancellationToken).ConfigureAwait(false);
                        if (renewed is null)
                        {
                            throw;
                        }
                        credential = renewed;
                        request.Options.Set(UsedCredential, credential);
                        (token, lifetime) = await _tokenClient.GetTokenAsync(_registry, unscoped, scopes, credential, cancellationToken).ConfigureAwait(false);
                    }
                    _tokens.Store(key, token, lifetime);
                }
            }
            finally
            {
                _fetchGate.Release();
            }
        }
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Options.Set(SentScheme, "Bearer");
        return new Applied(key, token);
    }

    /// <summary>
    /// True when <paramref name="scopes"/> already ask for everything <paramref name="wanted"/> names
    /// (<c>type:name:actions</c>): the same resource with every action, or <c>*</c>.
    /// </summary>
    internal static bool Covers(IReadOnlyList<string> scopes, string wanted)
    {
        var (type, name, actions) = SplitScope(wanted);
        if (actions is null)
        {
            return scopes.Contains(wanted, StringComparer.Ordinal);
        }
        var granted = scopes.Select(SplitScope)
            .Where(s => s.Type == type && s.Name == name && s.Actions is not null)
            .SelectMany(s => s.Actions!)
            .ToHashSet(StringComparer.Ordinal);
        return granted.Contains("*") || actions.All(granted.Contains);
    }

    private static (string Type, string Name, string[]? Actions) SplitScope(string scope)
    {
        var first = scope.IndexOf(':', StringComparison.Ordinal);
        var last = scope.LastIndexOf(':');
        return first < 0 || last <= first
            ? (scope, string.Empty, null)
            : (scope[..first], scope[(first + 1)..last], scope[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _fetchGate.Dispose();
        }
        base.Dispose(disposing);
    }
}
