using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// An HTTPS endpoint of the simulated router: Kestrel on a free 127.0.0.1 port with a certificate the simulated
/// ingress CA signed, running one handler. A route's host is this server's <c>127.0.0.1:PORT</c>.
/// </summary>
public sealed class IngressTlsServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private IngressTlsServer(WebApplication app, Uri baseUri)
    {
        _app = app;
        BaseUri = baseUri;
    }

    /// <summary><c>https://127.0.0.1:PORT/</c>.</summary>
    public Uri BaseUri { get; }

    /// <summary><c>127.0.0.1:PORT</c>: the route's host.</summary>
    public string Authority => BaseUri.Authority;

    public static Task<IngressTlsServer> StartAsync(X509Certificate2 certificate, RequestDelegate handler) =>
        StartAsync(certificate, handler, new IPEndPoint(IPAddress.Loopback, 0));

    /// <summary>On a given address and port, e.g. a loopback address a test maps a service host name to.</summary>
    public static async Task<IngressTlsServer> StartAsync(X509Certificate2 certificate, RequestDelegate handler, IPEndPoint endpoint)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(endpoint, listen => listen.UseHttps(certificate));
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            kestrel.AddServerHeader = false;
        });
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        return new IngressTlsServer(app, new Uri($"https://{endpoint.Address}:{uri.Port}/"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
