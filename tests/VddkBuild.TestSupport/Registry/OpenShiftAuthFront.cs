using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace VddkBuild.TestSupport.Registry;

/// <summary>
/// Behaves like OpenShift's integrated registry route in front of a plain registry: unauthenticated requests get
/// 401 <c>Bearer realm="&lt;front&gt;/openshift/token"</c> (no service, no scope); GET on the realm with Basic
/// <c>anyuser:&lt;token&gt;</c> answers <c>{"token","access_token"}</c> for tokens it knows, 401 for others, and the
/// anonymous token without credentials (also to a POST, which it records - clients must not POST). Registry calls
/// need a known token as Bearer (or Basic password); pull-only tokens get 403 on writes.
/// </summary>
public sealed class OpenShiftAuthFront : IAsyncDisposable
{
    public const string AnonymousToken = "anonymous";

    private readonly ReverseProxyForwarder _forwarder;
    private readonly ConcurrentDictionary<string, bool> _tokens = new(StringComparer.Ordinal);
    private LoopbackWebServer? _server;
    private int _realmPosts;
    private int _realmGets;

    private OpenShiftAuthFront(Uri upstream) => _forwarder = new ReverseProxyForwarder(upstream);

    public string Authority => _server!.Authority;

    public int RealmPosts => _realmPosts;

    public int RealmGets => _realmGets;

    public static async Task<OpenShiftAuthFront> StartAsync(Uri upstream)
    {
        var front = new OpenShiftAuthFront(upstream);
        front._server = await LoopbackWebServer.StartAsync(front.HandleAsync);
        return front;
    }

    /// <summary>Makes <paramref name="token"/> valid (a service-account token), with or without push rights.</summary>
    public void AddToken(string token, bool canPush = true) => _tokens[token] = canPush;

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        if (path.TrimEnd('/') == "/openshift/token")
        {
            await IssueTokenAsync(context);
            return;
        }
        var token = PresentedToken.From(context.Request.Headers.Authorization.ToString());
        if (token is null || !_tokens.TryGetValue(token, out var canPush))
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"{new Uri(_server!.BaseUri, "openshift/token").AbsoluteUri}\"";
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}");
            return;
        }
        var writes = !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method);
        if (writes && !canPush)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("{\"errors\":[{\"code\":\"DENIED\",\"message\":\"requested access to the resource is denied\",\"detail\":null}]}");
            return;
        }
        // The registry behind has no auth of its own.
        await _forwarder.ForwardAsync(context, request => request.Headers.Authorization = null);
    }

    private async Task IssueTokenAsync(HttpContext context)
    {
        if (HttpMethods.IsPost(context.Request.Method))
        {
            Interlocked.Increment(ref _realmPosts);
        }
        else
        {
            Interlocked.Increment(ref _realmGets);
        }
        var authorization = context.Request.Headers.Authorization.ToString();
        string issued;
        if (authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            var password = PresentedToken.From(authorization);
            if (password is null || !_tokens.ContainsKey(password))
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                await context.Response.WriteAsync("{\"error\":\"invalid token\"}");
                return;
            }
            issued = password;
        }
        else
        {
            issued = AnonymousToken;
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject { ["token"] = issued, ["access_token"] = issued }.ToJsonString());
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        _forwarder.Dispose();
    }
}
