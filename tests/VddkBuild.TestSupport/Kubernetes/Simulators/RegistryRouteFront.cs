using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// The registry's default route as OpenShift's registry serves it: HTTPS with an ingress-CA-signed certificate,
/// 401 <c>Bearer realm="https://HOST/openshift/token"</c> without credentials, the realm answering GET with Basic
/// <c>any:&lt;token&gt;</c> by echoing the token; registry calls need a service account token the API server issued
/// (<see cref="KubeTokenIssuer.Validate"/>) and RBAC in the repository's namespace: push (writes) needs a RoleBinding
/// to system:image-builder (or system:image-pusher, edit, admin) for the account, pull needs that or
/// system:image-puller. Everything else goes to the docker-registry behind it.
/// </summary>
public sealed class RegistryRouteFront : IAsyncDisposable
{
    public const string AnonymousToken = "anonymous";

    private static readonly string[] PushRoles = ["system:image-builder", "system:image-pusher", "edit", "admin"];
    private static readonly string[] PullRoles = [.. PushRoles, "system:image-puller", "view"];

    private readonly LoopbackKubeApiServer _api;
    private readonly ConcurrentDictionary<string, bool> _expired = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<PresentedRegistryToken> _presented = new();
    private IngressTlsServer? _server;
    private IngressTlsServer? _service;
    private Action? _afterExpiry;
    private volatile ManifestRefusal? _refusal;
    private int _refusedManifests;
    private volatile ReverseProxyForwarder? _forwarder;
    private int _expireAfter = int.MaxValue;
    private int _authorizedRequests;
    private int _rejectedExpired;
    private int _realmPosts;

    private RegistryRouteFront(LoopbackKubeApiServer api) => _api = api;

    /// <summary>The route's host: <c>127.0.0.1:PORT</c>.</summary>
    public string Host => _server!.Authority;

    /// <summary>Registry requests with a token rejected because it had expired.</summary>
    public int RejectedExpiredTokens => Volatile.Read(ref _rejectedExpired);

    /// <summary>POSTs to the realm (clients must GET: OpenShift answers a POST with the anonymous token).</summary>
    public int RealmPosts => Volatile.Read(ref _realmPosts);

    public int AuthorizedRequests => Volatile.Read(ref _authorizedRequests);

    /// <summary>Every registry request's method, path, Host and the token it carried (null without one), in order.</summary>
    public IReadOnlyList<PresentedRegistryToken> PresentedTokens => [.. _presented];

    /// <summary>Manifest PUTs refused by <see cref="RefuseManifestPuts"/>.</summary>
    public int RefusedManifestPuts => Volatile.Read(ref _refusedManifests);

    /// <summary>
    /// The registry's service as pods reach it: the same registry (same auth, same storage) on
    /// <paramref name="endpoint"/> with a certificate the service CA signed for
    /// <c>image-registry.openshift-image-registry.svc</c>. Tests map that name to the endpoint's address.
    /// </summary>
    public async Task ServeServiceAsync(X509Certificate2 certificate, IPEndPoint endpoint) =>
        _service = await IngressTlsServer.StartAsync(certificate, HandleAsync, endpoint);

    /// <summary>Refuses manifest PUTs whose Content-Type starts with <paramref name="mediaType"/>, as registries without OCI support do.</summary>
    public void RefuseManifestPuts(string mediaType, int status, string body) => _refusal = new ManifestRefusal(mediaType, status, body);

    public static async Task<RegistryRouteFront> StartAsync(LoopbackKubeApiServer api, SimulatedIngress ingress)
    {
        var front = new RegistryRouteFront(api);
        front._server = await IngressTlsServer.StartAsync(ingress.IssueRouteCertificate(), front.HandleAsync);
        return front;
    }

    /// <summary>Points the route at a (re)started registry; null: no endpoints (503).</summary>
    public void SetUpstream(Uri? upstream)
    {
        var previous = _forwarder;
        _forwarder = upstream is null ? null : new ReverseProxyForwarder(upstream);
        previous?.Dispose();
    }

    /// <summary>
    /// After <paramref name="authorizedRequests"/> more authorized registry requests, every token issued so far
    /// counts as expired (as if its 10 minutes had passed mid-push); tokens requested afterwards work.
    /// </summary>
    /// <param name="afterExpiry">Runs once, right before the tokens are expired (e.g. the kubelet writing a new token); tokens it issues stay valid.</param>
    public void ExpireIssuedTokensAfter(int authorizedRequests, Action? afterExpiry = null)
    {
        _afterExpiry = afterExpiry;
        Volatile.Write(ref _expireAfter, AuthorizedRequests + authorizedRequests);
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "/";
        if (path.TrimEnd('/') == "/openshift/token")
        {
            await IssueTokenAsync(context);
            return;
        }
        var token = PresentedToken.From(context.Request.Headers.Authorization.ToString());
        _presented.Enqueue(new PresentedRegistryToken(context.Request.Method, path, context.Request.Host.Value ?? string.Empty, token));
        var identity = token is null ? null : Validate(token);
        if (identity is null)
        {
            await ChallengeAsync(context);
            return;
        }
        var repository = RepositoryOf(path);
        if (repository is not null)
        {
            var ns = repository.Split('/')[0];
            var writes = !HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method);
            if (!IsAllowed(identity, ns, writes ? PushRoles : PullRoles))
            {
                // The real registry says no more than this; the client has to explain what is missing.
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync("{\"errors\":[{\"code\":\"DENIED\",\"message\":\"requested access to the resource is denied\",\"detail\":null}]}");
                return;
            }
        }
        var authorized = Interlocked.Increment(ref _authorizedRequests);
        var limit = Volatile.Read(ref _expireAfter);
        // Exactly one request expires the tokens (parallel uploads reach the limit together).
        if (authorized >= limit && Interlocked.CompareExchange(ref _expireAfter, int.MaxValue, limit) == limit)
        {
            var expiring = _api.Tokens.Issued.ToList();
            // The kubelet writes the new token before the old one stops working (at 80% of its life), so the
            // callback runs first and what it issues stays valid.
            Interlocked.Exchange(ref _afterExpiry, null)?.Invoke();
            foreach (var issued in expiring)
            {
                _expired.TryAdd(issued.Token, true);
            }
        }
        if (_refusal is { } refusal && HttpMethods.IsPut(context.Request.Method) && path.Contains("/manifests/", StringComparison.Ordinal)
            && (context.Request.ContentType ?? string.Empty).StartsWith(refusal.MediaType, StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _refusedManifests);
            await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
            context.Response.StatusCode = refusal.Status;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(refusal.Body);
            return;
        }
        var forwarder = _forwarder;
        if (forwarder is null)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            await context.Response.WriteAsync("Application is not available");
            return;
        }
        await forwarder.ForwardAsync(context, request =>
        {
            request.Headers.Authorization = null;
            // As the router does: the registry then builds upload Locations with https://ROUTE-HOST.
            request.Headers.Remove("X-Forwarded-Proto");
            request.Headers.TryAddWithoutValidation("X-Forwarded-Proto", "https");
        });
    }

    private IssuedServiceAccountToken? Validate(string token)
    {
        if (_expired.ContainsKey(token) || _api.Tokens.IsExpired(token))
        {
            Interlocked.Increment(ref _rejectedExpired);
            return null;
        }
        return _api.Tokens.Validate(token);
    }

    private async Task ChallengeAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        // As OpenShift's registry: the realm is on the host the client addressed (the route, or the service from a pod).
        context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"https://{context.Request.Host.Value}/openshift/token\"";
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync("{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\",\"detail\":null}]}");
    }

    private async Task IssueTokenAsync(HttpContext context)
    {
        if (HttpMethods.IsPost(context.Request.Method))
        {
            Interlocked.Increment(ref _realmPosts);
        }
        var authorization = context.Request.Headers.Authorization.ToString();
        var issued = AnonymousToken;
        if (authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            var password = PresentedToken.From(authorization);
            if (password is null || Validate(password) is null)
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync("{\"error\":\"invalid_token\"}");
                return;
            }
            issued = password;
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(new JsonObject { ["token"] = issued, ["access_token"] = issued }.ToJsonString());
    }

    /// <summary>RoleBindings of the namespace that bind one of <paramref name="roles"/> to the account, its groups or everyone authenticated.</summary>
    private bool IsAllowed(IssuedServiceAccountToken identity, string ns, string[] roles)
    {
        foreach (var binding in _api.Store.List(KubeResources.RoleBindings, ns))
        {
            var role = binding["roleRef"]?["name"]?.GetValue<string>();
            if (role is null || !roles.Contains(role, StringComparer.Ordinal))
            {
                continue;
            }
            foreach (var subject in (binding["subjects"] as JsonArray ?? []).OfType<JsonObject>())
            {
                var kind = subject["kind"]?.GetValue<string>();
                var name = subject["name"]?.GetValue<string>();
                var subjectNs = subject["namespace"]?.GetValue<string>() ?? ns;
                var matches = kind switch
                {
                    "ServiceAccount" => name == identity.ServiceAccount && subjectNs == identity.Namespace,
                    "User" => name == identity.UserName,
                    "Group" => name is not null && identity.Groups.Contains(name),
                    _ => false,
                };
                if (matches)
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary><c>ns/name</c> of <c>/v2/ns/name/(blobs|manifests|tags)/...</c>; null for <c>/v2/</c>.</summary>
    private static string? RepositoryOf(string path)
    {
        if (!path.StartsWith("/v2/", StringComparison.Ordinal))
        {
            return null;
        }
        var rest = path["/v2/".Length..];
        foreach (var marker in new[] { "/blobs/", "/manifests/", "/tags/" })
        {
            var at = rest.IndexOf(marker, StringComparison.Ordinal);
            if (at > 0)
            {
                return rest[..at];
            }
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        if (_service is not null)
        {
            await _service.DisposeAsync();
        }
        _forwarder?.Dispose();
    }
}

/// <summary>One registry request as the front saw it.</summary>
public sealed record PresentedRegistryToken(string Method, string Path, string Host, string? Token);

internal sealed record ManifestRefusal(string MediaType, int Status, string Body);
