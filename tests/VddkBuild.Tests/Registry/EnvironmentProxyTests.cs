using System.Net;
using k8s;
using VddkBuild.Cluster;
using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

/// <summary>
/// NO_PROXY as Go reads it (golang.org/x/net/http/httpproxy), the reading of oc, podman and skopeo. The rows marked
/// .NET differ from HttpClient.DefaultProxy, which sent those connections to the proxy.
/// </summary>
public sealed class EnvironmentProxyTests
{
    private const string Proxy = "http://proxy.corp.example:3128/";

    private static EnvironmentProxy? From(params (string Name, string Value)[] variables)
    {
        var values = variables.ToDictionary(v => v.Name, v => v.Value);
        return EnvironmentProxy.FromEnvironment(name => values.GetValueOrDefault(name));
    }

    private static EnvironmentProxy WithNoProxy(string noProxy) =>
        From(("HTTPS_PROXY", Proxy), ("HTTP_PROXY", Proxy), ("NO_PROXY", noProxy))!;

    [Theory]
    // CIDR ranges: OpenShift's cluster proxy lists the machine, cluster and service networks so (.NET: proxied).
    [InlineData("10.0.0.0/8", "https://10.1.2.3:6443/", true)]
    [InlineData("172.30.0.0/16", "https://172.30.0.1/", true)]
    [InlineData("10.0.0.0/8", "https://11.1.2.3/", false)]
    [InlineData("10.1.2.3/8", "https://10.200.0.1/", true)]
    [InlineData("fd00::/8", "https://[fd12::1]:5000/", true)]
    // A domain covers itself and its subdomains (.NET: only itself).
    [InlineData("example.com", "https://registry.apps.example.com/", true)]
    [InlineData("example.com", "https://example.com/", true)]
    [InlineData("example.com", "https://notexample.com/", false)]
    [InlineData("Example.COM", "https://a.example.com/", true)]
    // A leading dot or "*." covers subdomains only.
    [InlineData(".example.com", "https://a.example.com/", true)]
    [InlineData(".example.com", "https://example.com/", false)]
    [InlineData("*.example.com", "https://a.example.com/", true)]
    [InlineData("*.example.com", "https://example.com/", false)]
    [InlineData(".svc", "https://image-registry.openshift-image-registry.svc:5000/", true)]
    // "*": no proxy at all (.NET: proxied).
    [InlineData("*", "https://anything.example.org/", true)]
    [InlineData("a.test, *", "https://anything.example.org/", true)]
    // Ports (.NET: the entry never matches).
    [InlineData("api.test:6443", "https://api.test:6443/", true)]
    [InlineData("api.test:6443", "https://api.test/", false)]
    [InlineData("10.1.2.3:6443", "https://10.1.2.3:6443/", true)]
    [InlineData("10.1.2.3:6443", "https://10.1.2.3/", false)]
    [InlineData("[fd00::1]:5000", "https://[fd00::1]:5000/", true)]
    [InlineData("fd00::1", "https://[fd00::1]:5000/", true)]
    [InlineData("10.1.2.3", "https://10.1.2.3:8443/", true)]
    // Loopback and localhost never go through a proxy.
    [InlineData("", "https://localhost:5000/", true)]
    [InlineData("", "https://127.0.0.1:5000/", true)]
    [InlineData("", "https://[::1]:5000/", true)]
    [InlineData("", "https://registry.example.com/", false)]
    [InlineData(" , ,", "https://registry.example.com/", false)]
    public void No_proxy_is_matched_as_go_matches_it(string noProxy, string url, bool direct)
    {
        var proxy = WithNoProxy(noProxy);

        var chosen = proxy.GetProxy(new Uri(url));

        Assert.Equal(direct ? null : new Uri(Proxy), chosen);
        Assert.Equal(direct, proxy.IsBypassed(new Uri(url)));
    }

    [Fact]
    public void Https_uses_https_proxy_and_http_uses_http_proxy_only()
    {
        var httpsOnly = From(("HTTPS_PROXY", "proxy.corp.example:3128"));

        Assert.Equal(new Uri("http://proxy.corp.example:3128/"), httpsOnly!.GetProxy(new Uri("https://registry.example.com/")));
        Assert.Null(httpsOnly.GetProxy(new Uri("http://registry.example.com/")));
        Assert.Null(From(("NO_PROXY", "x")));
    }

    [Fact]
    public void Upper_case_wins_over_lower_case_and_lower_case_alone_works()
    {
        var both = From(("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:2"), ("no_proxy", "example.com"));
        var lower = From(("https_proxy", "http://lower:2"));

        Assert.Equal(new Uri("http://upper:1/"), both!.GetProxy(new Uri("https://other.test/")));
        Assert.Null(both.GetProxy(new Uri("https://a.example.com/")));
        Assert.Equal(new Uri("http://lower:2/"), lower!.GetProxy(new Uri("https://other.test/")));
    }

    [Fact]
    public void The_proxy_urls_user_and_password_answer_the_proxys_challenge()
    {
        var proxy = From(("HTTPS_PROXY", "http://ci%40corp:p%3Ass@proxy.corp.example:3128"))!;

        var credential = proxy.Credentials!.GetCredential(new Uri("http://proxy.corp.example:3128/"), "Basic");

        Assert.Equal("ci@corp", credential!.UserName);
        Assert.Equal("p:ss", credential.Password);
        Assert.Null(proxy.Credentials.GetCredential(new Uri("http://other:3128/"), "Basic"));
        // The address .NET gets (and quotes in its proxy errors) has no user and password.
        Assert.Equal("http://proxy.corp.example:3128/", proxy.GetProxy(new Uri("https://registry.example/"))!.AbsoluteUri);
    }

    [Fact]
    public void The_registry_client_connects_through_it()
    {
        var options = new RegistryTransportOptions { Proxy = WithNoProxy("10.0.0.0/8") };
        using var transport = new HostTransport(new Uri("https://registry.example.com"), insecure: false, new RegistryTlsTrust(null), options, () => { });

        Assert.True(transport.Sockets.UseProxy);
        Assert.Null(transport.Sockets.Proxy!.GetProxy(new Uri("https://10.1.2.3/")));
        Assert.Equal(new Uri(Proxy), transport.Sockets.Proxy.GetProxy(new Uri("https://registry.example.com/")));
    }

    [Fact]
    public void The_api_server_connection_uses_it_unless_the_kubeconfig_names_a_proxy_url()
    {
        var environment = new Dictionary<string, string> { ["HTTPS_PROXY"] = Proxy, ["NO_PROXY"] = "172.30.0.0/16" };
        var configuration = new KubernetesClientConfiguration { Host = "https://172.30.0.1:443" };
        ClusterConnection.UseEnvironmentProxy(configuration, environment.GetValueOrDefault);
        using var handler = new SocketsHttpHandler();
        configuration.FirstMessageHandlerSetup!(handler);

        var kubeconfigProxy = new WebProxy("http://kubeconfig-proxy:8080");
        var withProxyUrl = new KubernetesClientConfiguration { Host = "https://172.30.0.1:443", FirstMessageHandlerSetup = h => h.Proxy = kubeconfigProxy };
        ClusterConnection.UseEnvironmentProxy(withProxyUrl, environment.GetValueOrDefault);
        using var second = new SocketsHttpHandler();
        withProxyUrl.FirstMessageHandlerSetup!(second);

        Assert.True(handler.UseProxy);
        Assert.Null(handler.Proxy!.GetProxy(new Uri("https://172.30.0.1:443/")));
        Assert.Equal(new Uri(Proxy), handler.Proxy.GetProxy(new Uri("https://api.cluster.example.com:6443/")));
        Assert.Same(kubeconfigProxy, second.Proxy);
    }
}
