using System.Net;
using System.Net.Http.Headers;
using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class RegistryAuthHandlerTests
{
    /// <summary>
    /// A registry and its token service in one: the token is the sorted scopes it was asked for. The manifest needs
    /// a token for <paramref name="needed"/>; without one the answer is 401 naming that scope (insufficient_scope
    /// once a token was sent), as a registry whose access rules use another repository name does.
    /// </summary>
    private sealed class ScopedRegistry(string needed) : HttpMessageHandler
    {
        public List<string> TokenRequests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var uri = request.RequestUri!;
            if (uri.AbsolutePath == "/token")
            {
                var scopes = uri.Query.TrimStart('?').Split('&').Where(p => p.StartsWith("scope=", StringComparison.Ordinal))
                    .Select(p => Uri.UnescapeDataString(p["scope=".Length..])).Order(StringComparer.Ordinal).ToList();
                TokenRequests.Add(string.Join(" ", scopes));
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent($"{{\"token\":\"{Uri.EscapeDataString(string.Join(" ", scopes))}\"}}") });
            }
            var token = request.Headers.Authorization is { Scheme: "Bearer", Parameter: { } t } ? Uri.UnescapeDataString(t) : null;
            if (token is not null && token.Split(' ').Contains(needed))
            {
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent("{}") });
            }
            var response = new HttpResponseMessage(HttpStatusCode.Unauthorized);
            response.Headers.WwwAuthenticate.Add(AuthenticationHeaderValue.Parse(
                $"Bearer realm=\"https://r.example/token\",service=\"r.example\",scope=\"{needed}\"{(token is null ? string.Empty : ",error=\"insufficient_scope\"")}"));
            return Task.FromResult(response);
        }
    }

    private static async Task<(HttpStatusCode Status, ScopedRegistry Registry)> GetAsync(string needed, RegistryRequestContext context)
    {
        var registry = new ScopedRegistry(needed);
        var tokenInvoker = new HttpMessageInvoker(registry, disposeHandler: false);
        var credentials = new StaticCredentialProvider();
        credentials.Set("r.example", new RegistryCredential("u", "p", "test"));
        using var handler = new RegistryAuthHandler(registry, "r.example", credentials, new BearerTokenCache(), new BearerTokenClient(_ => tokenInvoker, new RegistryTransportOptions()));
        using var invoker = new HttpMessageInvoker(handler, disposeHandler: false);
        using var request = new HttpRequestMessage(HttpMethod.Get, "https://r.example/v2/mirror/img/manifests/1");
        request.Options.Set(RegistryRequestContext.Key, context);
        using var response = await invoker.SendAsync(request, CancellationToken.None);
        return (response.StatusCode, registry);
    }

    /// <summary>The registry names a scope the request did not ask for: it is asked for too, first (go-containerregistry does the same).</summary>
    [Fact]
    public async Task ChallengeNamingAnotherScope_IsAskedForTogetherWithTheRequestsOwn()
    {
        var (status, registry) = await GetAsync("repository:upstream/img:pull", RegistryRequestContext.Pull("mirror/img"));

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["repository:mirror/img:pull repository:upstream/img:pull"], registry.TokenRequests);
    }

    /// <summary>A challenge for less than the request asks (pull, while it asks pull+push) changes nothing: one token, for the request's scope.</summary>
    [Fact]
    public async Task ChallengeNamingAScopeTheRequestAlreadyCovers_AddsNothing()
    {
        var (status, registry) = await GetAsync("repository:mirror/img:pull", RegistryRequestContext.Push("mirror/img"));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal(["repository:mirror/img:pull,push"], registry.TokenRequests.Distinct());
    }

    [Theory]
    [InlineData("repository:a/b:pull", true)]
    [InlineData("repository:a/b:push,pull", true)]
    [InlineData("repository:a/b:delete", false)]
    [InlineData("repository:c:pull", false)]
    [InlineData("registry:catalog:*", false)]
    public void Covers_ComparesResourceAndActions(string wanted, bool covered)
    {
        Assert.Equal(covered, RegistryAuthHandler.Covers(["repository:a/b:pull,push", "repository:base:pull"], wanted));
    }
}
