using System.Net;
using System.Net.Sockets;

namespace VddkBuild.Registry;

/// <summary>
/// HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lowercase forms) read as Go's net/http reads them
/// (golang.org/x/net/http/httpproxy), so that every connection of a build (API server, registry, S3 endpoint) goes
/// through the proxy exactly when oc, podman and skopeo would. .NET's own reading of NO_PROXY differs: it ignores CIDR
/// ranges (OpenShift's cluster proxy lists the machine, pod and service networks that way, e.g. 172.30.0.0/16, the
/// in-cluster API server's address), <c>*</c>, <c>host:port</c> entries, and a domain without a leading dot does not
/// cover its subdomains there; each of those connections went to the proxy.
/// </summary>
public sealed class EnvironmentProxy : IWebProxy
{
    private readonly Uri? _httpsProxy;
    private readonly Uri? _httpProxy;
    private readonly bool _bypassAll;
    private readonly List<(byte[] Network, int PrefixLength)> _cidrs = [];
    private readonly List<(IPAddress Address, string? Port)> _addresses = [];
    private readonly List<(string Suffix, string? Port, bool MatchesBareName)> _domains = [];

    private EnvironmentProxy(Uri? httpsProxy, Uri? httpProxy, string? noProxy)
    {
        // The addresses handed to .NET carry no user and password: its proxy errors quote the address.
        _httpsProxy = WithoutUserInfo(httpsProxy);
        _httpProxy = WithoutUserInfo(httpProxy);
        Credentials = new ProxyCredentials(httpsProxy, httpProxy);
        foreach (var raw in (noProxy ?? "").Split(','))
        {
            var entry = raw.Trim().ToLowerInvariant();
            if (entry.Length == 0)
            {
                continue;
            }
            if (entry == "*")
            {
                _bypassAll = true;
                return;
            }
            if (TryParseCidr(entry, out var network, out var prefix))
            {
                _cidrs.Add((network, prefix));
                continue;
            }
            var (host, port) = SplitHostPort(entry);
            if (IPAddress.TryParse(host, out var address))
            {
                _addresses.Add((Normalize(address), port));
                continue;
            }
            if (host.Length == 0)
            {
                continue;
            }
            // "*.example.com" is ".example.com"; ".example.com" covers subdomains only, "example.com" also itself.
            if (host.StartsWith("*.", StringComparison.Ordinal))
            {
                host = host[1..];
            }
            var bare = !host.StartsWith('.');
            _domains.Add((bare ? "." + host : host, port, bare));
        }
    }

    /// <summary>The proxy settings of the environment; null when neither HTTPS_PROXY nor HTTP_PROXY is set (connect directly).</summary>
    public static EnvironmentProxy? FromEnvironment(Func<string, string?>? getEnvironmentVariable = null)
    {
        var get = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        string? Any(string upper, string lower) => get(upper) is { Length: > 0 } value ? value : get(lower) is { Length: > 0 } low ? low : null;
        var https = ParseProxy(Any("HTTPS_PROXY", "https_proxy"));
        var http = ParseProxy(Any("HTTP_PROXY", "http_proxy"));
        return https is null && http is null ? null : new EnvironmentProxy(https, http, Any("NO_PROXY", "no_proxy"));
    }

    /// <summary>User and password of the proxy URL (<c>http://user:pass@proxy:3128</c>), for proxy authentication.</summary>
    public ICredentials? Credentials { get; set; }

    public Uri? GetProxy(Uri destination)
    {
        var proxy = destination.Scheme switch
        {
            "https" or "wss" => _httpsProxy,
            "http" or "ws" => _httpProxy,
            _ => null,
        };
        return proxy is not null && UsesProxy(destination) ? proxy : null;
    }

    public bool IsBypassed(Uri host) => GetProxy(host) is null;

    private bool UsesProxy(Uri destination)
    {
        var host = destination.IdnHost.ToLowerInvariant().TrimEnd('.');
        var port = destination.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (host == "localhost")
        {
            return false;
        }
        IPAddress? ip = IPAddress.TryParse(destination.DnsSafeHost, out var parsed) ? Normalize(parsed) : null;
        if (ip is not null && IPAddress.IsLoopback(ip))
        {
            return false;
        }
        if (_bypassAll)
        {
            return false;
        }
        if (ip is not null)
        {
            if (_cidrs.Any(c => Contains(c.Network, c.PrefixLength, ip)) || _addresses.Any(a => a.Address.Equals(ip) && (a.Port is null || a.Port == port)))
            {
                return false;
            }
        }
        return !_domains.Any(d => (host.EndsWith(d.Suffix, StringComparison.Ordinal) || (d.MatchesBareName && host == d.Suffix[1..])) && (d.Port is null || d.Port == port));
    }

    /// <summary>As Go: a full URL (http, https, socks5), else <c>host[:port]</c> taken as http://.</summary>
    private static Uri? ParseProxy(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        var text = value.Trim();
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "socks5" or "socks5h" or "socks4" or "socks4a" && uri.Host.Length > 0)
        {
            return uri;
        }
        // Go ignores a value it cannot parse (no proxy), and so does this.
        return Uri.TryCreate("http://" + text, UriKind.Absolute, out var http) && http.Host.Length > 0 ? http : null;
    }

    private static (string Host, string? Port) SplitHostPort(string entry)
    {
        if (entry.StartsWith('['))
        {
            var close = entry.IndexOf(']');
            if (close > 0)
            {
                var rest = entry[(close + 1)..];
                return (entry[1..close], rest.StartsWith(':') && rest.Length > 1 ? rest[1..] : null);
            }
            return (entry, null);
        }
        var colon = entry.IndexOf(':');
        return colon >= 0 && colon == entry.LastIndexOf(':') ? (entry[..colon], colon + 1 < entry.Length ? entry[(colon + 1)..] : null) : (entry, null);
    }

    private static bool TryParseCidr(string entry, out byte[] network, out int prefixLength)
    {
        network = [];
        prefixLength = 0;
        var slash = entry.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(entry[..slash], out var address)
            || !int.TryParse(entry[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out prefixLength))
        {
            return false;
        }
        address = Normalize(address);
        network = address.GetAddressBytes();
        return prefixLength <= network.Length * 8;
    }

    private static bool Contains(byte[] network, int prefixLength, IPAddress ip)
    {
        var bytes = ip.GetAddressBytes();
        if (bytes.Length != network.Length)
        {
            return false;
        }
        for (var bit = 0; bit < prefixLength; bit++)
        {
            var mask = (byte)(0x80 >> (bit % 8));
            if ((bytes[bit / 8] & mask) != (network[bit / 8] & mask))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>::ffff:10.1.2.3 is 10.1.2.3, as in Go's net.IP.</summary>
    private static IPAddress Normalize(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 && address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    /// <summary>The user and password of a proxy URL (<c>http://user:pass@proxy:3128</c>), for the proxy's login.</summary>
    internal static NetworkCredential? CredentialsOf(Uri proxy)
    {
        if (string.IsNullOrEmpty(proxy.UserInfo))
        {
            return null;
        }
        var parts = proxy.UserInfo.Split(':', 2);
        return new NetworkCredential(Uri.UnescapeDataString(parts[0]), parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : "");
    }

    /// <summary>A proxy URL without its user and password.</summary>
    internal static Uri? WithoutUserInfo(Uri? proxy) =>
        proxy is null || string.IsNullOrEmpty(proxy.UserInfo) ? proxy : new UriBuilder(proxy) { UserName = "", Password = "" }.Uri;

    private sealed class ProxyCredentials(Uri? httpsProxy, Uri? httpProxy) : ICredentials
    {
        public NetworkCredential? GetCredential(Uri uri, string authType)
        {
            foreach (var proxy in new[] { httpsProxy, httpProxy })
            {
                if (proxy is not null && string.Equals(proxy.Host, uri.Host, StringComparison.OrdinalIgnoreCase) && proxy.Port == uri.Port && CredentialsOf(proxy) is { } credential)
                {
                    return credential;
                }
            }
            return null;
        }
    }
}
