using System.Net;
using Microsoft.AspNetCore.Http;

namespace VddkBuild.TestSupport.Registry;

/// <summary>
/// Forwards one request to an upstream registry, streaming both bodies. The client's Host header is kept, so the
/// registry builds upload Locations that point back at the proxy (and stay counted / filtered).
/// </summary>
public sealed class ReverseProxyForwarder : IDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Expect", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Proxy-Authenticate", "Host",
    };

    private readonly HttpMessageInvoker _upstream;

    public ReverseProxyForwarder(Uri upstream)
    {
        Upstream = upstream;
        _upstream = new HttpMessageInvoker(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        });
    }

    public Uri Upstream { get; }

    public async Task ForwardAsync(HttpContext context, Action<HttpRequestMessage>? adjust = null)
    {
        var incoming = context.Request;
        var target = new Uri(Upstream, incoming.Path.ToUriComponent() + incoming.QueryString.ToUriComponent());
        using var request = new HttpRequestMessage(new HttpMethod(incoming.Method), target);
        var hasBody = incoming.ContentLength > 0 || incoming.Headers.TransferEncoding.Count > 0;
        if (hasBody)
        {
            request.Content = new StreamContent(incoming.Body, 81920);
        }
        foreach (var header in incoming.Headers)
        {
            if (HopByHop.Contains(header.Key))
            {
                continue;
            }
            if (!request.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray()) && request.Content is not null)
            {
                request.Content.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
            }
        }
        request.Headers.Host = incoming.Host.Value;
        adjust?.Invoke(request);

        using var response = await _upstream.SendAsync(request, context.RequestAborted);
        context.Response.StatusCode = (int)response.StatusCode;
        foreach (var header in response.Headers.Concat(response.Content.Headers))
        {
            if (!HopByHop.Contains(header.Key))
            {
                context.Response.Headers[header.Key] = header.Value.ToArray();
            }
        }
        if (!HttpMethods.IsHead(incoming.Method))
        {
            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            await body.CopyToAsync(context.Response.Body, context.RequestAborted);
        }
    }

    public void Dispose() => _upstream.Dispose();
}
