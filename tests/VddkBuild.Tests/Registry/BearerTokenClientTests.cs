using System.Text;
using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class BearerTokenClientTests
{
    private static readonly Uri Realm = new("https://auth.example/token");

    [Fact]
    public void BuildUri_AddsServiceAndEveryScope_Escaped()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://auth.example/token\",service=\"reg.example\"");

        var uri = BearerTokenClient.BuildUri(Realm, challenge, ["repository:a/b:pull,push", "repository:base:pull"]);

        Assert.Equal("https://auth.example/token?service=reg.example&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository%3Abase%3Apull", uri.AbsoluteUri);
    }

    [Fact]
    public void BuildUri_KeepsTheRealmsOwnQuery()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://auth.example/token?account=x\",service=\"s\"");

        var uri = BearerTokenClient.BuildUri(new Uri(challenge.Realm!), challenge, []);

        Assert.Equal("https://auth.example/token?account=x&service=s", uri.AbsoluteUri);
    }

    [Fact]
    public void BuildUri_ForOpenShift_SendsNoServiceOrScope()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://r.apps.example/openshift/token\"");

        var uri = BearerTokenClient.BuildUri(new Uri(challenge.Realm!), challenge, ["repository:a:pull,push"]);

        Assert.Equal("https://r.apps.example/openshift/token", uri.AbsoluteUri);
    }

    [Theory]
    [InlineData("{\"token\":\"T1\",\"expires_in\":300}", "T1", 300)]
    [InlineData("{\"access_token\":\"T2\"}", "T2", 60)]
    [InlineData("{\"token\":\"\",\"access_token\":\"T3\",\"expires_in\":0}", "T3", 60)]
    public void ParseTokenResponse_ReadsTokenOrAccessTokenAndExpiry(string json, string token, int seconds)
    {
        var (parsed, lifetime) = BearerTokenClient.ParseTokenResponse(Encoding.UTF8.GetBytes(json), "r", Realm);

        Assert.Equal(token, parsed);
        Assert.Equal(TimeSpan.FromSeconds(seconds), lifetime);
    }

    [Theory]
    [InlineData("{\"token\":\"T\",\"expires_in\":1000000000000}")]
    [InlineData("{\"token\":\"T\",\"expires_in\":9223372036854775807}")]
    [InlineData("{\"token\":\"T\",\"expires_in\":1e300}")]
    public void ParseTokenResponse_HugeExpiry_IsCutToADay(string json)
    {
        var (_, lifetime) = BearerTokenClient.ParseTokenResponse(Encoding.UTF8.GetBytes(json), "r", Realm);

        Assert.Equal(BearerTokenClient.MaxLifetime, lifetime);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("not json")]
    [InlineData("[\"token\"]")]
    public void ParseTokenResponse_WithoutToken_FailsWithResponseInvalid(string json)
    {
        var error = Assert.Throws<VddkException>(() => BearerTokenClient.ParseTokenResponse(Encoding.UTF8.GetBytes(json), "r", Realm));

        Assert.Equal(ErrorCodes.RegistryResponseInvalid, error.Code);
    }

    private static readonly AuthChallenge Challenge = AuthChallenge.Parse("Bearer realm=\"https://auth.example/oauth2/token\",service=\"reg.example\"");

    /// <summary>Answers every request with a token and keeps what was sent (method, URI, Authorization, form body).</summary>
    private sealed class RecordingEndpoint : HttpMessageHandler
    {
        public List<(HttpMethod Method, Uri Uri, string? Authorization, string? Body)> Requests { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = request.Content is null ? null : await request.Content.ReadAsStringAsync(cancellationToken);
            Requests.Add((request.Method, request.RequestUri!, request.Headers.Authorization?.ToString(), body));
            return new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("{\"access_token\":\"A\",\"expires_in\":300}") };
        }
    }

    private static (BearerTokenClient Client, RecordingEndpoint Endpoint) ClientWithEndpoint(params string[] insecure)
    {
        var endpoint = new RecordingEndpoint();
        var invoker = new HttpMessageInvoker(endpoint);
        return (new BearerTokenClient(_ => invoker, new RegistryTransportOptions { InsecureRegistries = insecure }), endpoint);
    }

    [Fact]
    public async Task IdentityToken_IsExchangedByTheRefreshTokenGrant_AsAFormPost()
    {
        var (client, endpoint) = ClientWithEndpoint();
        var identity = new RegistryCredential(RegistryCredential.IdentityTokenUser, "refresh-secret", "config.json");

        var (token, lifetime) = await client.GetTokenAsync("reg.example", Challenge, ["repository:a/b:pull,push", "repository:base:pull"], identity, CancellationToken.None);

        Assert.Equal("A", token);
        Assert.Equal(TimeSpan.FromSeconds(300), lifetime);
        var sent = Assert.Single(endpoint.Requests);
        Assert.Equal(HttpMethod.Post, sent.Method);
        Assert.Equal("https://auth.example/oauth2/token", sent.Uri.AbsoluteUri);
        Assert.Null(sent.Authorization);
        Assert.Equal("grant_type=refresh_token&refresh_token=refresh-secret&client_id=vddkbuild&service=reg.example&scope=repository%3Aa%2Fb%3Apull%2Cpush+repository%3Abase%3Apull", sent.Body);
    }

    [Fact]
    public async Task UserAndPassword_GoAsBasicAuthOnAGet()
    {
        var (client, endpoint) = ClientWithEndpoint();

        await client.GetTokenAsync("reg.example", Challenge, ["repository:a:pull"], new RegistryCredential("u", "p", "test"), CancellationToken.None);

        var sent = Assert.Single(endpoint.Requests);
        Assert.Equal(HttpMethod.Get, sent.Method);
        Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("u:p")), sent.Authorization);
    }

    [Fact]
    public async Task PlainHttpRealm_GetsNoCredentials_UnlessTheRegistryOrRealmIsInsecure()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"http://auth.example:8080/token\",service=\"reg.example\"");
        var credential = new RegistryCredential("u", "secret-password", "test");
        var (client, endpoint) = ClientWithEndpoint();

        var error = await Assert.ThrowsAsync<VddkException>(() => client.GetTokenAsync("reg.example", challenge, [], credential, CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryTlsFailed, error.Code);
        Assert.Empty(endpoint.Requests);
        Assert.DoesNotContain("secret-password", error.ToString());
        await client.GetTokenAsync("reg.example", challenge, [], credential: null, CancellationToken.None);
        Assert.Single(endpoint.Requests);
        var (insecureRegistry, first) = ClientWithEndpoint("reg.example");
        await insecureRegistry.GetTokenAsync("reg.example", challenge, [], credential, CancellationToken.None);
        Assert.Single(first.Requests);
        var (insecureRealm, second) = ClientWithEndpoint("auth.example:8080");
        await insecureRealm.GetTokenAsync("reg.example", challenge, [], credential, CancellationToken.None);
        Assert.Single(second.Requests);
    }

    /// <summary>Answers every token request with <paramref name="status"/> and <paramref name="body"/>.</summary>
    private sealed class RefusingEndpoint(System.Net.HttpStatusCode status, string body) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, "application/json") });
    }

    private static Task<VddkException> RefusedAsync(System.Net.HttpStatusCode status, string body, RegistryCredential? credential)
    {
        var invoker = new HttpMessageInvoker(new RefusingEndpoint(status, body));
        var client = new BearerTokenClient(_ => invoker, new RegistryTransportOptions());
        return Assert.ThrowsAsync<VddkException>(() => client.GetTokenAsync("reg.example", Challenge, ["repository:team/vddk:pull,push"], credential, CancellationToken.None));
    }

    /// <summary>
    /// Docker Hub's 403 for an access token without write permission (moby/moby#45415): the account is known, its
    /// permission is missing. VDDK3011 names the account, what was asked and the endpoint's reason.
    /// </summary>
    [Fact]
    public async Task Forbidden_IsAccessDenied_NamingTheAccountTheScopeAndTheReason_NotACredentialsProblem()
    {
        var error = await RefusedAsync(System.Net.HttpStatusCode.Forbidden, "{\"details\":\"requesting higher privileges than access token allows\"}",
            new RegistryCredential("ci-bot", "dckr_pat_secret", "config.json"));

        Assert.Equal(ErrorCodes.RegistryDenied, error.Code);
        Assert.Contains("user 'ci-bot' (credentials from config.json)", error.Message, StringComparison.Ordinal);
        Assert.Contains("pull+push on repository 'team/vddk'", error.Message, StringComparison.Ordinal);
        Assert.Contains("requesting higher privileges than access token allows", error.Message, StringComparison.Ordinal);
        Assert.Contains("lacks the permission", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("dckr_pat_secret", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// GHCR answers an anonymous token request for a private package with 403: with no credentials at all the message
    /// must not say credentials were accepted; it says none were found and where they were looked for.
    /// </summary>
    [Fact]
    public async Task Forbidden_ForAnonymousAccess_SaysNoCredentialsWereFound_NotThatTheyWereAccepted()
    {
        var error = await RefusedAsync(System.Net.HttpStatusCode.Forbidden, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"requested access to the resource is denied\"}]}", null);

        Assert.Equal(ErrorCodes.RegistryDenied, error.Code);
        Assert.Contains("requested access to the resource is denied", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("credentials were accepted", error.Message, StringComparison.Ordinal);
        Assert.Contains("No credentials were found for this registry", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unauthorized_IsAuthenticationFailed_QuotingTheEndpointsReason()
    {
        var error = await RefusedAsync(System.Net.HttpStatusCode.Unauthorized, "{\"details\":\"incorrect username or password\"}",
            new RegistryCredential("ci-bot", "wrong-secret", "config.json"));

        Assert.Equal(ErrorCodes.RegistryAuthFailed, error.Code);
        Assert.Contains("incorrect username or password", error.Message, StringComparison.Ordinal);
        Assert.Contains("user 'ci-bot'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-secret", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnEndpointEchoingTheSecret_IsQuotedWithoutIt()
    {
        var error = await RefusedAsync(System.Net.HttpStatusCode.BadRequest, "{\"error\":\"invalid_grant\",\"error_description\":\"unknown refresh token echoed-secret-42\"}",
            new RegistryCredential(RegistryCredential.IdentityTokenUser, "echoed-secret-42", "config.json"));

        Assert.Contains("unknown refresh token ***", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("echoed-secret-42", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>An identity token as Azure and other OAuth registries issue it: a JWT, far longer than a quoted field.</summary>
    private static readonly string LongToken = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + new string('Q', 420) + ".sig-" + new string('z', 160);

    /// <summary>
    /// The endpoint's words are cut to 200 characters for the message; a long secret they echo, or one that begins
    /// just before the cut, must not leave its beginning behind.
    /// </summary>
    [Theory]
    [InlineData("json-long-token")]
    [InlineData("json-secret-at-the-cut")]
    [InlineData("text-secret-at-the-cut")]
    public async Task AnEchoedSecretCutByTheQuotesLength_LeavesNoPartOfItInTheMessage(string shape)
    {
        var (credential, body) = shape switch
        {
            "json-long-token" => (new RegistryCredential(RegistryCredential.IdentityTokenUser, LongToken, "config.json"),
                $"{{\"error\":\"invalid_grant\",\"error_description\":\"unknown refresh token {LongToken}\"}}"),
            "json-secret-at-the-cut" => (new RegistryCredential("ci-bot", "S3cretPassw0rd-at-the-cut", "config.json"),
                $"{{\"details\":\"{new string('x', 185)} password S3cretPassw0rd-at-the-cut refused\"}}"),
            _ => (new RegistryCredential("ci-bot", "S3cretPassw0rd-at-the-cut", "config.json"),
                $"<html>{new string('x', 179)} password S3cretPassw0rd-at-the-cut refused</html>"),
        };

        var error = await RefusedAsync(System.Net.HttpStatusCode.BadRequest, body, credential);

        Assert.DoesNotContain(credential.Secret[..5], error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>A secret the endpoint echoes as it was sent (the Basic header's base64, the refresh grant's form encoding) is not quoted either.</summary>
    [Theory]
    [InlineData("basic")]
    [InlineData("form")]
    public async Task AnEchoedSecretInTheFormItWasSent_IsQuotedWithoutIt(string form)
    {
        var credential = form == "basic"
            ? new RegistryCredential("ci-bot", "pa ss/word+1", "config.json")
            : new RegistryCredential(RegistryCredential.IdentityTokenUser, "refresh/token+with=chars", "config.json");
        var echoed = form == "basic"
            ? "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("ci-bot:pa ss/word+1"))
            : "refresh_token=" + Uri.EscapeDataString("refresh/token+with=chars");

        var error = await RefusedAsync(System.Net.HttpStatusCode.BadRequest, $"{{\"error\":\"invalid_request\",\"error_description\":\"cannot parse {echoed}\"}}", credential);

        Assert.Contains("cannot parse", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(echoed[^12..], error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>Redirects the first request to <paramref name="to"/>, answers the rest with a token; records what came.</summary>
    private sealed class RedirectingEndpoint(Uri to, System.Net.HttpStatusCode status) : HttpMessageHandler
    {
        public List<(Uri Uri, string? Authorization)> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Add((request.RequestUri!, request.Headers.Authorization?.ToString()));
            var response = Requests.Count == 1
                ? new HttpResponseMessage(status) { Headers = { Location = to } }
                : new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("{\"token\":\"T\"}") };
            return Task.FromResult(response);
        }
    }

    [Theory]
    [InlineData("https://auth.example/v2/token", true)]
    [InlineData("https://other.example/token", false)]
    public async Task TokenEndpointRedirect_IsFollowed_WithCredentialsOnlyOnTheSameOrigin(string to, bool keepsCredentials)
    {
        var endpoint = new RedirectingEndpoint(new Uri(to), System.Net.HttpStatusCode.Found);
        var invoker = new HttpMessageInvoker(endpoint);
        var client = new BearerTokenClient(_ => invoker, new RegistryTransportOptions());

        var (token, _) = await client.GetTokenAsync("reg.example", Challenge, ["repository:a:pull"], new RegistryCredential("u", "p", "test"), CancellationToken.None);

        Assert.Equal("T", token);
        Assert.Equal(2, endpoint.Requests.Count);
        Assert.StartsWith(to, endpoint.Requests[1].Uri.AbsoluteUri);
        Assert.Equal(keepsCredentials, endpoint.Requests[1].Authorization is not null);
    }

    [Fact]
    public async Task RefreshGrantRedirectedToAnotherHost_IsNotFollowed()
    {
        var endpoint = new RedirectingEndpoint(new Uri("https://other.example/oauth2/token"), System.Net.HttpStatusCode.TemporaryRedirect);
        var invoker = new HttpMessageInvoker(endpoint);
        var client = new BearerTokenClient(_ => invoker, new RegistryTransportOptions());

        var error = await Assert.ThrowsAsync<VddkException>(() => client.GetTokenAsync("reg.example", Challenge, [], new RegistryCredential(RegistryCredential.IdentityTokenUser, "refresh-secret", "test"), CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryAuthFailed, error.Code);
        Assert.Single(endpoint.Requests);
        Assert.DoesNotContain("refresh-secret", error.ToString());
    }
}
