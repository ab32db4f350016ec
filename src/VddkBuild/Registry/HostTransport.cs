using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Reflection;

namespace VddkBuild.Registry;

/// <summary>
/// The connection pool to one scheme+authority: one <see cref="SocketsHttpHandler"/> (keep-alive, pooled
/// connections), and a counting layer every request passes through, which also names the client in
/// <c>User-Agent</c>. Redirects are not followed automatically (blob redirects to storage must drop the registry's
/// Authorization header); nothing is decompressed (blobs must arrive byte-exact).
/// </summary>
internal sealed class HostTransport : IDisposable
{
    public HostTransport(Uri origin, bool insecure, RegistryTlsTrust trust, RegistryTransportOptions options, Action countRequest)
    {
        Origin = origin;
        Sockets = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = options.ConnectTimeout,
            Proxy = options.Proxy,
            UseProxy = options.Proxy is not null,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = insecure
                    ? RegistryTlsTrust.AcceptAny
                    : (_, certificate, _, errors) => trust.Validate(certificate, errors),
            },
        };
        Counting = new CountingHandler(Sockets, countRequest);
        Invoker = new HttpMessageInvoker(Counting, disposeHandler: false);
    }

    public Uri Origin { get; }

    public SocketsHttpHandler Sockets { get; }

    /// <summary>Innermost handler shared by the plain invoker and the registry's auth handler.</summary>
    public HttpMessageHandler Counting { get; }

    /// <summary>For requests that carry no registry credentials (token endpoints, storage redirects).</summary>
    public HttpMessageInvoker Invoker { get; }

    public void Dispose()
    {
        Invoker.Dispose();
        Counting.Dispose();
        Sockets.Dispose();
    }

    /// <summary>
    /// <c>vddkbuild/&lt;version&gt;</c>. .NET sends no User-Agent of its own, and Docker Hub, web application firewalls
    /// in front of registries and CDNs answer 403 to requests without one (goharbor/harbor#23025).
    /// </summary>
    internal static readonly ProductInfoHeaderValue UserAgent = new("vddkbuild", ProductVersion());

    private static string ProductVersion()
    {
        var version = typeof(HostTransport).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? typeof(HostTransport).Assembly.GetName().Version?.ToString(3) ?? "0";
        // The build metadata (+commit) is no part of a product token's version.
        return version.Split('+')[0];
    }

    private sealed class CountingHandler(HttpMessageHandler inner, Action count) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            count();
            if (request.Headers.UserAgent.Count == 0)
            {
                request.Headers.UserAgent.Add(UserAgent);
            }
            return base.SendAsync(request, cancellationToken);
        }
    }
}
