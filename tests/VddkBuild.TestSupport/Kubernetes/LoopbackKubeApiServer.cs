using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// A Kubernetes API server of the project's own for tests (no kube-apiserver can run here): Kestrel on 127.0.0.1 with
/// a free port, HTTPS from a generated CA, bearer-token users, and a kubeconfig that
/// <c>KubernetesClientConfiguration.BuildConfigFromConfigFile</c> reads. It follows the REST conventions the cluster
/// steps rely on (see <see cref="KubeObjectStore"/>; Status bodies with reasons; merge patch; TokenRequest), logs
/// every request, injects faults and 403s on demand, and calls simulated controllers on object changes.
/// </summary>
public sealed class LoopbackKubeApiServer : IAsyncDisposable
{
    public const string AdminUser = "vddk-test-admin";

    private readonly WebApplication _app;
    private readonly string _directory;
    private readonly Dictionary<string, string> _userTokens = new(StringComparer.Ordinal);
    private readonly List<KubeRequest> _requests = [];
    private readonly List<KubeFault> _faults = [];
    private readonly List<KubeForbiddenRule> _forbidden = [];
    private readonly HashSet<string> _unservedGroups = new(StringComparer.Ordinal);
    private readonly List<(string Verb, KubeResource Resource, string Text)> _warnings = [];
    private readonly List<(KubeResource Resource, Func<KubeObjectChange, CancellationToken, Task> Handler)> _controllers = [];
    private readonly List<Exception> _controllerErrors = [];
    private readonly Channel<KubeObjectChange> _changes = Channel.CreateUnbounded<KubeObjectChange>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _controllerLoop;
    private int _pendingChanges;

    private LoopbackKubeApiServer(WebApplication app, LoopbackCertificates certificates, KubeObjectStore store, KubeTokenIssuer tokens, string directory)
    {
        _app = app;
        Certificates = certificates;
        Store = store;
        Tokens = tokens;
        _directory = directory;
        AdminToken = "sha256~" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        _userTokens[AdminToken] = AdminUser;
        Store.Changed += Enqueue;
        _controllerLoop = Task.Run(RunControllersAsync);
    }

    public LoopbackCertificates Certificates { get; }

    public KubeObjectStore Store { get; }

    public KubeTokenIssuer Tokens { get; }

    /// <summary>https://127.0.0.1:PORT</summary>
    public Uri BaseUri { get; private set; } = null!;

    /// <summary>The bearer token of the all-powerful test user (kept out of logs).</summary>
    public string AdminToken { get; }

    /// <summary>A kubeconfig for the admin user, written at start (context <c>loopback</c>, namespace <c>default</c>).</summary>
    public string KubeconfigPath { get; private set; } = null!;

    /// <summary>Failures thrown by simulated controllers; tests assert it stays empty.</summary>
    public IReadOnlyList<Exception> ControllerErrors
    {
        get { lock (_controllerErrors) return _controllerErrors.ToList(); }
    }

    public IReadOnlyList<KubeRequest> Requests
    {
        get { lock (_requests) return _requests.ToList(); }
    }

    public IReadOnlyList<KubeRequest> MutatingRequests => Requests.Where(r => r.IsMutating).ToList();

    public static async Task<LoopbackKubeApiServer> StartAsync(TimeProvider? clock = null, CancellationToken cancellationToken = default)
    {
        var certificates = LoopbackCertificates.Create("VddkBuild loopback kube-apiserver CA");
        var directory = Directory.CreateTempSubdirectory("vddk-kube-").FullName;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = directory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        // Client certificates are asked for, not required (as kube-apiserver): tokens and certificates both authenticate.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = certificates.Server,
            ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            ClientCertificateValidation = (_, _, _) => true,
        })));
        var app = builder.Build();
        var server = new LoopbackKubeApiServer(app, certificates, new KubeObjectStore(clock), new KubeTokenIssuer(clock), directory);
        app.Run(server.HandleAsync);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        server.BaseUri = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        server.KubeconfigPath = server.WriteKubeconfig(Path.Combine(directory, "kubeconfig"), server.AdminToken);
        return server;
    }

    /// <summary>A second user with its own bearer token (for 403 tests); returns the token.</summary>
    public string AddUser(string userName)
    {
        var token = "sha256~" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        lock (_userTokens)
        {
            _userTokens[token] = userName;
        }
        return token;
    }

    /// <summary>Writes a kubeconfig for this server with the given bearer token; returns <paramref name="path"/>.</summary>
    public string WriteKubeconfig(string path, string token, string contextName = "loopback", string defaultNamespace = "default") =>
        WriteKubeconfigFile(path, contextName, contextName + "-user", [("token", token)], defaultNamespace);

    /// <summary>
    /// Writes a kubeconfig whose user authenticates with a client certificate this server's CA signed (the installer's
    /// admin kubeconfig: <c>client-certificate-data</c> and <c>client-key-data</c>, no token); returns <paramref name="path"/>.
    /// </summary>
    public string WriteClientCertificateKubeconfig(string path, string user, string contextName = "admin")
    {
        var (certificate, key) = Certificates.IssueClientCertificate(user, "system:masters");
        return WriteKubeconfigFile(path, contextName, contextName,
            [("client-certificate-data", Base64(certificate)), ("client-key-data", Base64(key))], defaultNamespace: null);
    }

    private static string Base64(string pem) => Convert.ToBase64String(Encoding.ASCII.GetBytes(pem));

    /// <summary>One cluster (this server, its CA), one user with <paramref name="userFields"/>, one context; written atomically.</summary>
    private string WriteKubeconfigFile(string path, string contextName, string userName, IReadOnlyList<(string Key, string Value)> userFields, string? defaultNamespace)
    {
        var yaml = new StringBuilder();
        yaml.Append($"""
            apiVersion: v1
            kind: Config
            clusters:
            - name: {contextName}-cluster
              cluster:
                server: {BaseUri.ToString().TrimEnd('/')}
                certificate-authority-data: {Base64(Certificates.AuthorityPem)}
            users:
            - name: {userName}
              user:

            """);
        foreach (var (key, value) in userFields)
        {
            yaml.Append("    ").Append(key).Append(": ").Append(value).Append('\n');
        }
        yaml.Append($"""
            contexts:
            - name: {contextName}
              context:
                cluster: {contextName}-cluster
                user: {userName}

            """);
        if (defaultNamespace is not null)
        {
            yaml.Append("    namespace: ").Append(defaultNamespace).Append('\n');
        }
        yaml.Append($"current-context: {contextName}\n");
        var temp = path + ".tmp";
        File.WriteAllText(temp, yaml.ToString());
        File.Move(temp, path, overwrite: true);
        return path;
    }

    /// <summary>Makes matching requests fail (e.g. the next PATCH of the registry config answers 409 Conflict).</summary>
    public void InjectFault(KubeFault fault)
    {
        lock (_faults)
        {
            _faults.Add(fault);
        }
    }

    /// <summary>
    /// Answers every matching request with a <c>Warning: 299 - "text"</c> header, as kube-apiserver does for deprecated
    /// API versions and admission warnings.
    /// </summary>
    public void WarnOn(string verb, KubeResource resource, string text)
    {
        lock (_warnings)
        {
            _warnings.Add((verb, resource, text));
        }
    }

    /// <summary>Denies a verb on a resource with the real authorizer's 403 message.</summary>
    public void Forbid(KubeForbiddenRule rule)
    {
        lock (_forbidden)
        {
            _forbidden.Add(rule);
        }
    }

    /// <summary>
    /// Stops serving an API group, as a cluster without it (plain Kubernetes: no route.openshift.io; no Forklift CRD)
    /// answers: 404 with kube-apiserver's plain-text body "404 page not found", not a Status object.
    /// </summary>
    public void Unserve(string group)
    {
        lock (_unservedGroups)
        {
            _unservedGroups.Add(group);
        }
    }

    private bool IsUnserved(string path)
    {
        var segments = path.Trim('/').Split('/');
        lock (_unservedGroups)
        {
            return segments.Length >= 2 && segments[0] == "apis" && _unservedGroups.Contains(segments[1]);
        }
    }

    public void ClearRequestLog()
    {
        lock (_requests)
        {
            _requests.Clear();
        }
    }

    /// <summary>
    /// Plugs a simulated controller in: <paramref name="handler"/> runs (one change at a time, after the API response
    /// went out, like a real controller) for each change of <paramref name="resource"/>. Dispose to unplug.
    /// </summary>
    public IDisposable OnChange(KubeResource resource, Func<KubeObjectChange, CancellationToken, Task> handler)
    {
        var entry = (resource, handler);
        lock (_controllers)
        {
            _controllers.Add(entry);
        }
        return new Unsubscriber(() =>
        {
            lock (_controllers)
            {
                _controllers.Remove(entry);
            }
        });
    }

    /// <summary>Waits until the simulated controllers have handled every change so far (including changes they made).</summary>
    public async Task WaitForControllersAsync(CancellationToken cancellationToken = default)
    {
        while (Volatile.Read(ref _pendingChanges) > 0)
        {
            await Task.Delay(5, cancellationToken);
        }
    }

    private void Enqueue(KubeObjectChange change)
    {
        lock (_controllers)
        {
            if (!_controllers.Any(c => c.Resource == change.Resource))
            {
                return;
            }
        }
        Interlocked.Increment(ref _pendingChanges);
        _changes.Writer.TryWrite(change);
    }

    private async Task RunControllersAsync()
    {
        try
        {
            await foreach (var change in _changes.Reader.ReadAllAsync(_stopping.Token))
            {
                List<Func<KubeObjectChange, CancellationToken, Task>> handlers;
                lock (_controllers)
                {
                    handlers = _controllers.Where(c => c.Resource == change.Resource).Select(c => c.Handler).ToList();
                }
                foreach (var handler in handlers)
                {
                    try
                    {
                        await handler(change, _stopping.Token);
                    }
                    catch (Exception ex) when (!_stopping.IsCancellationRequested)
                    {
                        lock (_controllerErrors)
                        {
                            _controllerErrors.Add(ex);
                        }
                    }
                }
                Interlocked.Decrement(ref _pendingChanges);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        var user = Authenticate(request) ?? Certificates.ClientUser(context.Connection.ClientCertificate);
        KubeApiRoute? route = null;
        var verb = "";
        JsonObject body;
        var status = HttpStatusCode.OK;
        int? retryAfter = null;
        try
        {
            if (IsUnserved(path))
            {
                lock (_requests)
                {
                    _requests.Add(new KubeRequest(request.Method, path, "", null, null, null, null, user ?? "system:anonymous", 404));
                }
                context.Response.StatusCode = 404;
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync("404 page not found\n", context.RequestAborted);
                return;
            }
            if (path == "/version")
            {
                body = new JsonObject { ["major"] = "1", ["minor"] = "31", ["gitVersion"] = "v1.31.0-vddkbuild-loopback", ["platform"] = "linux/amd64" };
            }
            else if (user is null)
            {
                throw new KubeStatusException(KubeStatus.Unauthorized());
            }
            else
            {
                route = KubeApiRoute.Parse(path) ?? throw new KubeStatusException(KubeStatus.Failure(HttpStatusCode.NotFound, "NotFound", "the server could not find the requested resource"));
                verb = route.Verb(request.Method, request.Query.ContainsKey("watch") && request.Query["watch"] == "true");
                CheckForbidden(user, verb, route);
                CheckFault(verb, route);
                if (request.Query.ContainsKey("dryRun"))
                {
                    throw new KubeStatusException(KubeStatus.BadRequest("the loopback API server does not implement server-side dry run"));
                }
                (status, body) = await DispatchAsync(context, verb, route);
            }
        }
        catch (KubeStatusException ex)
        {
            status = ex.StatusCode;
            body = ex.Status;
            retryAfter = ex.RetryAfterSeconds;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A bug in the loopback server must show in the test's failure, not as an empty 500.
            status = HttpStatusCode.InternalServerError;
            body = KubeStatus.Failure(status, "InternalError", $"loopback API server failure: {ex}");
        }
        lock (_requests)
        {
            _requests.Add(new KubeRequest(request.Method, path, verb, route?.Resource, route?.Namespace, route?.Name, route?.Subresource, user ?? "system:anonymous", (int)status));
        }
        context.Response.StatusCode = (int)status;
        context.Response.ContentType = "application/json";
        lock (_warnings)
        {
            foreach (var (_, _, text) in _warnings.Where(w => route is not null && w.Verb == verb && w.Resource == route.Resource))
            {
                context.Response.Headers.Append("Warning", $"299 - \"{text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"");
            }
        }
        if (retryAfter is { } seconds)
        {
            context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    private async Task<(HttpStatusCode, JsonObject)> DispatchAsync(HttpContext context, string verb, KubeApiRoute route)
    {
        var resource = route.Resource;
        switch (verb)
        {
            case "list":
                var filter = KubeSelectors.Parse(context.Request.Query["labelSelector"], context.Request.Query["fieldSelector"]);
                var items = Store.List(resource, route.Namespace, filter);
                return (HttpStatusCode.OK, new JsonObject
                {
                    ["kind"] = resource.Kind + "List",
                    ["apiVersion"] = resource.ApiVersion,
                    ["metadata"] = new JsonObject { ["resourceVersion"] = Store.CurrentResourceVersion },
                    ["items"] = new JsonArray(items.Cast<JsonNode>().ToArray()),
                });
            case "get" when route.Subresource is null or "status":
                return (HttpStatusCode.OK, Store.GetRequired(resource, route.Namespace, route.Name!));
            case "create" when route.Subresource is null && route.Name is null:
                return (HttpStatusCode.Created, Store.Create(resource, route.Namespace, await ReadObjectAsync(context)));
            case "create" when route.Subresource == "token" && resource == KubeResources.ServiceAccounts:
                return (HttpStatusCode.Created, IssueToken(route.Namespace!, route.Name!, await ReadObjectAsync(context)));
            case "update" when route.Subresource is null or "status":
                return (HttpStatusCode.OK, Store.Replace(resource, route.Namespace, route.Name!, await ReadObjectAsync(context), route.Subresource == "status"));
            case "patch" when route.Subresource is null or "status":
                var contentType = context.Request.ContentType ?? "";
                if (!contentType.StartsWith("application/merge-patch+json", StringComparison.OrdinalIgnoreCase)
                    && !contentType.StartsWith("application/strategic-merge-patch+json", StringComparison.OrdinalIgnoreCase))
                {
                    throw new KubeStatusException(KubeStatus.Failure(HttpStatusCode.UnsupportedMediaType, "UnsupportedMediaType",
                        $"the loopback API server supports merge and strategic merge patches only, not \"{contentType}\""));
                }
                return (HttpStatusCode.OK, Store.Patch(resource, route.Namespace, route.Name!, await ReadObjectAsync(context), route.Subresource == "status"));
            case "delete" when route.Subresource is null && route.Name is not null:
                var deleted = Store.Delete(resource, route.Namespace, route.Name);
                return (HttpStatusCode.OK, KubeStatus.Success(resource, route.Name, deleted["metadata"]?["uid"]?.GetValue<string>()));
            default:
                throw new KubeStatusException(KubeStatus.Failure(HttpStatusCode.MethodNotAllowed, "MethodNotAllowed",
                    $"the loopback API server does not support {verb} on {route.Resource.QualifiedName}{(route.Subresource is null ? "" : "/" + route.Subresource)}"));
        }
    }

    /// <summary>TokenRequest: 600 s minimum, 3600 s default, the service account must exist.</summary>
    private JsonObject IssueToken(string ns, string serviceAccount, JsonObject tokenRequest)
    {
        Store.GetRequired(KubeResources.ServiceAccounts, ns, serviceAccount);
        var spec = tokenRequest["spec"] as JsonObject ?? new JsonObject();
        var seconds = spec["expirationSeconds"]?.GetValue<long>() ?? 3600;
        if (seconds < 600)
        {
            throw new KubeStatusException(KubeStatus.Failure(HttpStatusCode.UnprocessableEntity, "Invalid",
                $"TokenRequest.authentication.k8s.io \"{serviceAccount}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"));
        }
        var audiences = (spec["audiences"] as JsonArray)?.Select(a => a!.GetValue<string>()).ToList() ?? [];
        if (audiences.Count == 0)
        {
            audiences.Add("https://kubernetes.default.svc");
        }
        var issued = Tokens.Issue(ns, serviceAccount, TimeSpan.FromSeconds(seconds), audiences);
        return new JsonObject
        {
            ["kind"] = "TokenRequest",
            ["apiVersion"] = "authentication.k8s.io/v1",
            ["metadata"] = new JsonObject { ["name"] = serviceAccount, ["namespace"] = ns },
            ["spec"] = new JsonObject
            {
                ["audiences"] = new JsonArray(audiences.Select(a => (JsonNode)JsonValue.Create(a)!).ToArray()),
                ["expirationSeconds"] = seconds,
            },
            ["status"] = new JsonObject
            {
                ["token"] = issued.Token,
                ["expirationTimestamp"] = issued.ExpiresAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
            },
        };
    }

    private string? Authenticate(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return null;
        }
        var token = header["Bearer ".Length..].Trim();
        lock (_userTokens)
        {
            if (_userTokens.TryGetValue(token, out var user))
            {
                return user;
            }
        }
        return Tokens.Validate(token)?.UserName;
    }

    private void CheckForbidden(string user, string verb, KubeApiRoute route)
    {
        lock (_forbidden)
        {
            var denied = _forbidden.Any(rule => rule.Verb == verb && rule.Resource == route.Resource && rule.Subresource == route.Subresource
                && (rule.Namespace is null || rule.Namespace == route.Namespace) && (rule.User is null || rule.User == user));
            if (denied)
            {
                throw new KubeStatusException(KubeStatus.Forbidden(user, verb, route.Resource, route.Subresource, route.Namespace, route.Name));
            }
        }
    }

    private void CheckFault(string verb, KubeApiRoute route)
    {
        KubeFault? fault;
        lock (_faults)
        {
            fault = _faults.FirstOrDefault(f => f.Times > 0 && (f.Verb is null || f.Verb == verb) && (f.Resource is null || f.Resource == route.Resource)
                && (f.Name is null || f.Name == route.Name) && (f.Subresource is null || f.Subresource == route.Subresource));
            if (fault is null)
            {
                return;
            }
            _faults[_faults.IndexOf(fault)] = fault with { Times = fault.Times - 1 };
        }
        var name = route.Name ?? "";
        var status = fault.StatusCode == HttpStatusCode.Conflict && fault.Reason is null && fault.Message is null
            ? KubeStatus.Conflict(route.Resource, name)
            : KubeStatus.Failure(fault.StatusCode, fault.Reason ?? DefaultReason(fault.StatusCode), fault.Message ?? $"injected failure ({(int)fault.StatusCode})", route.Resource, route.Name);
        throw new KubeStatusException(status) { RetryAfterSeconds = fault.RetryAfterSeconds };
    }

    private static string DefaultReason(HttpStatusCode code) => code switch
    {
        HttpStatusCode.Conflict => "Conflict",
        HttpStatusCode.TooManyRequests => "TooManyRequests",
        HttpStatusCode.ServiceUnavailable => "ServiceUnavailable",
        HttpStatusCode.GatewayTimeout => "Timeout",
        HttpStatusCode.Forbidden => "Forbidden",
        HttpStatusCode.NotFound => "NotFound",
        _ => "InternalError",
    };

    private static async Task<JsonObject> ReadObjectAsync(HttpContext context)
    {
        try
        {
            return await JsonSerializer.DeserializeAsync<JsonObject>(context.Request.Body, cancellationToken: context.RequestAborted)
                ?? throw new KubeStatusException(KubeStatus.BadRequest("the request body is empty"));
        }
        catch (JsonException ex)
        {
            throw new KubeStatusException(KubeStatus.BadRequest($"the request body is not a JSON object: {ex.Message}"));
        }
    }

    public async ValueTask DisposeAsync()
    {
        Store.Changed -= Enqueue;
        await _stopping.CancelAsync();
        _changes.Writer.TryComplete();
        await _controllerLoop;
        await _app.StopAsync();
        await _app.DisposeAsync();
        Certificates.Dispose();
        _stopping.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private sealed class Unsubscriber(Action unsubscribe) : IDisposable
    {
        public void Dispose() => unsubscribe();
    }
}
