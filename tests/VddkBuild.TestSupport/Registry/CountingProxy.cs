using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;

namespace VddkBuild.TestSupport.Registry;

/// <summary>What part of the distribution API a request addressed.</summary>
public enum RegistryRequestKind
{
    Ping,
    Manifest,
    Blob,
    Upload,
    Other,
}

/// <summary>One request seen by <see cref="CountingProxy"/>.</summary>
public sealed record ProxiedRequest(string Method, RegistryRequestKind Kind, string Path, string Query, long? ContentLength, int Status)
{
    /// <summary>A request that carried blob bytes: PATCH, or PUT on an upload with a non-empty body.</summary>
    public bool SentBlobData => Kind == RegistryRequestKind.Upload && (Method == "PATCH" || (Method == "PUT" && ContentLength > 0));

    public bool IsMount => Kind == RegistryRequestKind.Upload && Method == "POST" && Query.Contains("mount=", StringComparison.Ordinal);

    /// <summary>The digest named in <c>?digest=</c> or <c>?mount=</c>, or at the end of a blob path.</summary>
    public string? Digest
    {
        get
        {
            foreach (var name in new[] { "digest=", "mount=" })
            {
                var at = Query.IndexOf(name, StringComparison.Ordinal);
                if (at >= 0)
                {
                    var value = Query[(at + name.Length)..];
                    var amp = value.IndexOf('&');
                    return Uri.UnescapeDataString(amp < 0 ? value : value[..amp]);
                }
            }
            var blobs = Path.IndexOf("/blobs/sha256:", StringComparison.Ordinal);
            return blobs >= 0 ? Path[(blobs + "/blobs/".Length)..] : null;
        }
    }
}

/// <summary>A reverse proxy before a registry that records every request, to assert which calls a push made.</summary>
public sealed class CountingProxy : IAsyncDisposable
{
    private readonly ConcurrentQueue<ProxiedRequest> _requests = new();
    private readonly ReverseProxyForwarder _forwarder;
    private LoopbackWebServer? _server;

    private CountingProxy(Uri upstream) => _forwarder = new ReverseProxyForwarder(upstream);

    public string Authority => _server!.Authority;

    public IReadOnlyList<ProxiedRequest> Requests => [.. _requests];

    public static async Task<CountingProxy> StartAsync(Uri upstream)
    {
        var proxy = new CountingProxy(upstream);
        proxy._server = await LoopbackWebServer.StartAsync(proxy.HandleAsync);
        return proxy;
    }

    public void Reset() => _requests.Clear();

    /// <summary>
    /// Runs before each request is forwarded; returning true means the hook answered it (an injected fault such as a
    /// 503 or an aborted connection) and it is not forwarded.
    /// </summary>
    public Func<HttpContext, Task<bool>>? Fault { get; set; }

    public int Count(string method, RegistryRequestKind kind) => Requests.Count(r => r.Method == method && r.Kind == kind);

    private async Task HandleAsync(HttpContext context)
    {
        try
        {
            if (Fault is { } fault && await fault(context))
            {
                return;
            }
            await _forwarder.ForwardAsync(context);
        }
        finally
        {
            _requests.Enqueue(new ProxiedRequest(context.Request.Method, Classify(context.Request.Path.Value ?? "/"), context.Request.Path.Value ?? "/",
                context.Request.QueryString.Value ?? string.Empty, context.Request.ContentLength, context.Response.StatusCode));
        }
    }

    public static RegistryRequestKind Classify(string path) =>
        path.TrimEnd('/') == "/v2" ? RegistryRequestKind.Ping
        : path.Contains("/manifests/", StringComparison.Ordinal) ? RegistryRequestKind.Manifest
        : path.Contains("/blobs/uploads", StringComparison.Ordinal) ? RegistryRequestKind.Upload
        : path.Contains("/blobs/", StringComparison.Ordinal) ? RegistryRequestKind.Blob
        : RegistryRequestKind.Other;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        _forwarder.Dispose();
    }
}
