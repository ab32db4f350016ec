using System.Net;
using System.Net.Sockets;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>Free TCP ports on 127.0.0.1, for child servers that must be told their port up front.</summary>
public static class FreePort
{
    /// <summary>A port the OS reports free right now. A small race remains until the child binds it; callers that start servers retry on "address in use".</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
