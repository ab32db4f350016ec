using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// A route as the router serves it at the TCP level: TLS terminated with an ingress-CA certificate, bytes passed
/// unchanged to a plain-HTTP backend. Nothing in the HTTP requests is rewritten, so S3 signatures (which cover the
/// Host header and every x-amz-* header) stay valid end to end, as through a real router.
/// </summary>
public sealed class TlsTerminatingRoute : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly X509Certificate2 _certificate;
    private readonly IPEndPoint _backend;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private int _connections;

    private TlsTerminatingRoute(X509Certificate2 certificate, IPEndPoint backend)
    {
        _certificate = certificate;
        _backend = backend;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _acceptLoop = Task.Run(AcceptAsync);
    }

    /// <summary><c>127.0.0.1:PORT</c>: the route's host.</summary>
    public string Authority => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public Uri BaseUri => new($"https://{Authority}/");

    public int Connections => Volatile.Read(ref _connections);

    /// <param name="backend">http://127.0.0.1:PORT of the service behind the route.</param>
    public static TlsTerminatingRoute Start(X509Certificate2 certificate, Uri backend) =>
        new(certificate, new IPEndPoint(IPAddress.Parse(backend.Host), backend.Port));

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                await using var tls = new SslStream(client.GetStream(), leaveInnerStreamOpen: false);
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, _stopping.Token);
                using var backend = new TcpClient();
                await backend.ConnectAsync(_backend, _stopping.Token);
                await using var backendStream = backend.GetStream();
                using var done = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
                var up = PumpAsync(tls, backendStream, done.Token);
                var down = PumpAsync(backendStream, tls, done.Token);
                await Task.WhenAny(up, down);
                await done.CancelAsync();
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or System.Security.Authentication.AuthenticationException or ObjectDisposedException)
            {
                // A client that refuses the certificate, or a connection closed mid-way: the router just drops it.
            }
        }
    }

    private static async Task PumpAsync(Stream from, Stream to, CancellationToken cancellationToken)
    {
        try
        {
            await from.CopyToAsync(to, 81920, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        await _acceptLoop;
        _stopping.Dispose();
        _certificate.Dispose();
    }
}
