using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Asks a token endpoint (the challenge's realm) for a bearer token: with GET and Basic auth when a user name and
/// secret are known, anonymously otherwise; with an identity (refresh) token, as <c>docker login</c> stores for
/// OAuth registries (Azure's <c>az acr login</c>), by the OAuth2 refresh-token grant (POST). Sends <c>service</c>
/// and <c>scope</c> as the challenge implies; OpenShift's <c>/openshift/token</c> takes neither. Reads <c>token</c>
/// or <c>access_token</c>, and <c>expires_in</c> (default 60 s, at most a day). Credentials never go to a
/// plain-HTTP token endpoint unless the registry or that endpoint is marked insecure.
/// </summary>
internal sealed class BearerTokenClient(Func<Uri, HttpMessageInvoker> invokerFor, RegistryTransportOptions options)
{
    private static readonly TimeSpan DefaultLifetime = TimeSpan.FromSeconds(60);

    /// <summary>Longer lifetimes are cut to this: a token is only cached for one build.</summary>
    internal static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(1);

    /// <summary>The OAuth2 client id sent with the refresh-token grant (the endpoint records it, nothing more).</summary>
    internal const string ClientId = "vddkbuild";

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<(string Token, TimeSpan Lifetime)> GetTokenAsync(
        string registry, AuthChallenge challenge, IReadOnlyList<string> scopes, RegistryCredential? credential, CancellationToken cancellationToken)
    {
        var realmText = challenge.Realm;
        if (string.IsNullOrEmpty(realmText) || !Uri.TryCreate(realmText, UriKind.Absolute, out var realm)
            || realm.Scheme is not ("http" or "https"))
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid,
                $"The registry {registry} asked for a bearer token but named no usable token endpoint (realm).", registry);
        }
        if (credential is not null && realm.Scheme == Uri.UriSchemeHttp && !options.IsInsecure(registry) && !options.IsInsecure(realm.Authority))
        {
            throw new VddkException(ErrorCodes.RegistryTlsFailed,
                $"The registry {registry} sends clients for tokens to {UriForMessages.Format(realm)}, a plain-HTTP address; the credentials of user '{credential.UserName}' were not sent there, since they would travel unencrypted. " +
                $"Configure the registry's token realm as https://, or, if plain HTTP is acceptable, mark {realm.Authority} insecure (VddkInsecureRegistries or {RegistryTransportOptions.InsecureRegistriesVariable}).",
                registry);
        }
        var grant = credential is { IsIdentityToken: true };
        var origin = realm;
        var target = grant ? realm : BuildUri(realm, challenge, scopes);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        HttpResponseMessage response;
        for (var hop = 0; ; hop++)
        {
            // Credentials go only to the realm's own scheme, host and port; a redirect elsewhere is followed without
            // them (as Go's HTTP client does), and the refresh grant, whose body is the secret, not at all.
            var sameOrigin = SameOrigin(target, origin);
            using var request = grant
                ? RefreshTokenGrant(target, challenge, scopes, credential!)
                : new HttpRequestMessage(HttpMethod.Get, target);
            if (credential is { IsIdentityToken: false } && sameOrigin)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", credential.ToBasicParameter());
            }
            try
            {
                response = await invokerFor(target).SendAsync(request, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TransientRegistryException($"the token endpoint {UriForMessages.Format(target)} did not answer within {options.RequestTimeout.TotalSeconds:0} s");
            }
            catch (HttpRequestException ex)
            {
                throw RegistryClient.TranslateTransportError(ex, target.Authority, "the token endpoint " + UriForMessages.Format(target));
            }
            var follows = grant ? response.StatusCode is HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect
                : response.StatusCode is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;
            if (!follows || response.Headers.Location is not { } location)
            {
                break;
            }
            response.Dispose();
            var next = location.IsAbsoluteUri ? location : new Uri(target, location);
            if (hop >= 5 || next.Scheme is not ("http" or "https") || (grant && !SameOrigin(next, origin))
                || (next.Scheme == Uri.UriSchemeHttp && target.Scheme == Uri.UriSchemeHttps && credential is not null && !options.IsInsecure(next.Authority)))
            {
                throw new VddkException(ErrorCodes.RegistryAuthFailed,
                    $"The token endpoint {UriForMessages.Format(target)} of registry {registry} redirected to {UriForMessages.Format(next)}, which is not followed (more than 5 redirects, another host for an identity token, or plain HTTP from HTTPS with credentials). Configure the registry's token realm to the final address.",
                    UriForMessages.Format(target));
            }
            target = next;
        }
        var redirectedAway = !SameOrigin(target, origin);
        realm = target;
        using (response)
        {
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden && redirectedAway && credential is not null)
            {
                throw new VddkException(ErrorCodes.RegistryAuthFailed,
                    $"The token endpoint {UriForMessages.Format(origin)} of registry {registry} redirected to {UriForMessages.Format(target)}, another host, which refused to issue a token (HTTP {(int)response.StatusCode}); the credentials of user '{credential.UserName}' are only sent to the realm the registry named. Configure the registry's token realm to {UriForMessages.Format(target)}.",
                    UriForMessages.Format(target));
            }
            if (response.StatusCode == HttpStatusCode.Forbidden)
            {
                // 403 from a token endpoint: the account is known but may not have what was asked (Docker Hub for an
                // access token without write permission: "requesting higher privileges than access token allows";
                // GHCR for a token without write:packages). Not a login problem: logging in again changes nothing.
                var reason = await RegistryErrorResponse.ReadSummaryAsync(response, cancellationToken, SecretForms(credential)).ConfigureAwait(false);
                var asked = string.Join(" and ", challenge.Scopes.Concat(scopes).Distinct(StringComparer.Ordinal)
                    .Select(scope => new RegistryRequestContext([scope], RegistryPurpose.Pull).Describe()));
                var who = credential is null ? "anonymous access" : $"user '{credential.UserName}' (credentials from {credential.Source})";
                var fix = credential is null
                    ? $"{NoCredentialsFound} Log in with an account that has that access (podman login {registry})."
                    : "The credentials were accepted, but this account lacks the permission: grant it (write access to the repository or project to push, read access to pull) or use credentials that have it, such as an access token created with write (push) permission.";
                throw new VddkException(ErrorCodes.RegistryDenied,
                    $"The token endpoint {UriForMessages.Format(realm)} of registry {registry} refused {who} a token for {(asked.Length > 0 ? asked : "the access needed")}: HTTP 403{(reason.Length > 0 ? $" ({reason})" : string.Empty)}. {fix}",
                    UriForMessages.Format(realm));
            }
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                var reason = await RegistryErrorResponse.ReadSummaryAsync(response, cancellationToken, SecretForms(credential)).ConfigureAwait(false);
                var who = credential is null
                    ? NoCredentialsFound
                    : credential.IsIdentityToken
                        ? $"The identity token from {credential.Source} was rejected (expired or revoked)."
                        : $"The credentials of user '{credential.UserName}' from {credential.Source} were rejected.";
                throw new VddkException(ErrorCodes.RegistryAuthFailed,
                    $"The token endpoint {UriForMessages.Format(realm)} of registry {registry} refused to issue a token (HTTP 401{(reason.Length > 0 ? $": {reason}" : string.Empty)}). {who} Log in again or supply a valid token.",
                    UriForMessages.Format(realm));
            }
            if (TransientRegistryException.IsRetryableStatus(response.StatusCode))
            {
                throw new TransientRegistryException($"the token endpoint answered HTTP {(int)response.StatusCode}", response.StatusCode,
                    RetryAfter.From(response, DateTimeOffset.UtcNow));
            }
            if (!response.IsSuccessStatusCode)
            {
                var summary = await RegistryErrorResponse.ReadSummaryAsync(response, cancellationToken, SecretForms(credential)).ConfigureAwait(false);
                throw new VddkException(ErrorCodes.RegistryAuthFailed,
                    $"The token endpoint {UriForMessages.Format(realm)} of registry {registry} answered HTTP {(int)response.StatusCode}{(summary.Length > 0 ? ": " + summary : string.Empty)}.",
                    UriForMessages.Format(realm));
            }
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            return ParseTokenResponse(body, registry, realm);
        }
    }

    private static readonly string NoCredentialsFound =
        $"No credentials were found for this registry (looked in REGISTRY_AUTH_FILE, podman's auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json; {EnvironmentCredentialProvider.PasswordVariable} serves only the registry pushed to, VddkRegistry).";

    /// <summary>
    /// What a token endpoint's words, quoted in messages, must not show should the endpoint echo what it got: the
    /// secret, and the secret as it was sent (the Basic header's base64, the refresh grant's form encoding).
    /// </summary>
    private static IReadOnlyList<string> SecretForms(RegistryCredential? credential) => credential is { Secret.Length: > 0 }
        ? [credential.Secret, credential.ToBasicParameter(), Uri.EscapeDataString(credential.Secret), Uri.EscapeDataString(credential.Secret).Replace("%20", "+", StringComparison.Ordinal)]
        : [];

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && a.Host.Equals(b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>
    /// The OAuth2 refresh-token grant (RFC 6749 section 6, as the distribution token spec describes it): a form POST of
    /// <c>grant_type=refresh_token</c>, the identity token, <c>service</c>, <c>scope</c> and <c>client_id</c>.
    /// </summary>
    private static HttpRequestMessage RefreshTokenGrant(Uri realm, AuthChallenge challenge, IReadOnlyList<string> scopes, RegistryCredential credential)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "refresh_token"),
            new("refresh_token", credential.Secret),
            new("client_id", ClientId),
        };
        if (challenge.Service is { Length: > 0 } service)
        {
            form.Add(new("service", service));
        }
        var scope = string.Join(' ', challenge.Scopes.Concat(scopes).Distinct(StringComparer.Ordinal));
        if (scope.Length > 0)
        {
            form.Add(new("scope", scope));
        }
        return new HttpRequestMessage(HttpMethod.Post, realm) { Content = new FormUrlEncodedContent(form) };
    }

    internal static Uri BuildUri(Uri realm, AuthChallenge challenge, IReadOnlyList<string> scopes)
    {
        var query = new StringBuilder(realm.Query.TrimStart('?'));
        void Add(string name, string value)
        {
            if (query.Length > 0)
            {
                query.Append('&');
            }
            query.Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }
        // OpenShift's endpoint ignores service/scope and must see exactly what its challenge named.
        if (!challenge.IsOpenShift)
        {
            if (challenge.Service is { Length: > 0 } service)
            {
                Add("service", service);
            }
            foreach (var scope in challenge.Scopes.Concat(scopes).Distinct(StringComparer.Ordinal))
            {
                Add("scope", scope);
            }
        }
        var withoutQuery = realm.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
        return new Uri(query.Length == 0 ? withoutQuery : withoutQuery + "?" + query);
    }

    internal static (string Token, TimeSpan Lifetime) ParseTokenResponse(ReadOnlySpan<byte> body, string registry, Uri realm)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException("not an object");
            }
            string? token = null;
            if (root.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String)
            {
                token = t.GetString();
            }
            if (string.IsNullOrEmpty(token) && root.TryGetProperty("access_token", out var a) && a.ValueKind == JsonValueKind.String)
            {
                token = a.GetString();
            }
            if (string.IsNullOrEmpty(token))
            {
                throw new JsonException("no token");
            }
            var lifetime = DefaultLifetime;
            if (root.TryGetProperty("expires_in", out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var seconds) && seconds > 0)
            {
                lifetime = seconds >= MaxLifetime.TotalSeconds ? MaxLifetime : TimeSpan.FromSeconds(seconds);
            }
            return (token, lifetime);
        }
        catch (JsonException ex)
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid,
                $"The token endpoint {UriForMessages.Format(realm)} of registry {registry} did not return a JSON object with 'token' or 'access_token'.",
                UriForMessages.Format(realm), ex);
        }
    }
}
