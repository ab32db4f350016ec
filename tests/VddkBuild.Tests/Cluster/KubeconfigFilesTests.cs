using System.Text;
using System.Text.Json;
using VddkBuild.Cluster;
using VddkBuild.TestSupport.Kubernetes;

namespace VddkBuild.Tests.Cluster;

/// <summary>kubeconfig files as kubectl (client-go clientcmd) reads them, against the loopback API server.</summary>
public sealed class KubeconfigFilesTests : IAsyncLifetime
{
    private readonly ClusterTestContext _cluster = new();
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"vddk-kubeconfigs-{Guid.NewGuid():N}");

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        return _cluster.InitializeAsync();
    }

    public async Task DisposeAsync()
    {
        Directory.Delete(_root, recursive: true);
        await _cluster.DisposeAsync();
    }

    private string Server => _cluster.Server.BaseUri.ToString().TrimEnd('/');

    private string CaData => Convert.ToBase64String(Encoding.ASCII.GetBytes(_cluster.Server.Certificates.AuthorityPem));

    private string Write(string relativePath, string yaml)
    {
        var path = Path.Combine(_root, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, yaml);
        return path;
    }

    /// <summary>Proves the configuration reaches the server as the admin: a read that needs a valid token.</summary>
    private async Task AssertConnectsAsync(k8s.KubernetesClientConfiguration configuration)
    {
        using var connection = ClusterConnection.FromConfiguration(configuration);
        var session = new ClusterSession(connection, _cluster.Log);
        await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);
        Assert.NotNull(_cluster.Store.Get(KubeResources.Secrets, "openshift-image-registry", RegistryCredentialsStep.SecretName));
    }

    [Fact]
    public async Task Several_files_merge_with_the_first_winning_and_each_files_paths_relative_to_that_file()
    {
        // ~/.kube/config style: the current context, plus a stale entry for the same cluster name.
        var first = Write("home/config", $"""
            apiVersion: v1
            kind: Config
            current-context: prod
            contexts:
            - name: prod
              context: {"{"}cluster: prod-cluster, user: prod-admin, namespace: openshift-mtv{"}"}
            clusters:
            - name: prod-cluster
              cluster:
                server: {Server}
                certificate-authority: ../clusters/ca.crt
            """);
        // A cluster's own file in another directory: its relative paths are relative to it, not to the first file.
        Write("clusters/ca.crt", _cluster.Server.Certificates.AuthorityPem);
        var second = Write("clusters/prod/kubeconfig", $"""
            apiVersion: v1
            kind: Config
            current-context: other
            clusters:
            - name: prod-cluster
              cluster:
                server: https://127.0.0.1:1
            users:
            - name: prod-admin
              user:
                tokenFile: secrets/token
            contexts:
            - name: other
              context: {"{"}cluster: prod-cluster, user: nobody{"}"}
            """);
        Write("clusters/prod/secrets/token", _cluster.Server.AdminToken + "\n");

        var configuration = KubeconfigFiles.Load([first, second], context: null);

        Assert.Equal(Server, configuration.Host.TrimEnd('/'));
        Assert.Equal("openshift-mtv", configuration.Namespace);
        await AssertConnectsAsync(configuration);
    }

    [Fact]
    public void KUBECONFIG_lists_every_existing_file_in_order_and_skips_missing_ones()
    {
        var a = Write("a", "apiVersion: v1\nkind: Config\n");
        var b = Write("b", "apiVersion: v1\nkind: Config\n");
        var missing = Path.Combine(_root, "missing");
        string? Environment(string name) => name == "KUBECONFIG" ? string.Join(Path.PathSeparator, missing, a, b) : null;

        Assert.Equal([a, b], ClusterConnection.FindKubeconfigs(Environment));
        Assert.Equal([missing], ClusterConnection.FindKubeconfigs(n => n == "KUBECONFIG" ? missing : null));
    }

    [Theory]
    [InlineData("", "it has no current-context; set VddkKubeContext to one of its contexts (prod)")]
    [InlineData("current-context: gone\n", "it has no context \"gone\" (contexts: prod)")]
    public void A_missing_current_context_is_named_with_the_contexts_there_are(string currentContext, string expected)
    {
        var path = Write("config", $"apiVersion: v1\nkind: Config\n{currentContext}contexts:\n- name: prod\n  context: {{cluster: c, user: u}}\n");

        var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(path));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("users: []", "context \"prod\" names user \"u\", which none of")]
    [InlineData("clusters: []", "context \"prod\" names cluster \"c\", which none of")]
    public void A_context_naming_a_missing_cluster_or_user_says_which(string without, string expected)
    {
        var clusters = without.StartsWith("clusters", StringComparison.Ordinal) ? without : $"clusters:\n- name: c\n  cluster: {{server: {Server}}}";
        var users = without.StartsWith("users", StringComparison.Ordinal) ? without : "users:\n- name: u\n  user: {token: t}";
        var path = Write("config", $"apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\n{clusters}\n{users}\n");

        var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(path));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("cluster")]
    [InlineData("user")]
    [InlineData("context")]
    public void A_file_listing_two_entries_of_one_name_is_refused_as_kubectl_refuses_it(string kind)
    {
        string Entries(string k, string first, string second) => k == kind
            ? $"{k}s:\n- name: twin\n  {k}: {first}\n- name: twin\n  {k}: {second}\n"
            : $"{k}s:\n- name: twin\n  {k}: {first}\n";
        var path = Write("config", "apiVersion: v1\nkind: Config\ncurrent-context: twin\n"
            + Entries("cluster", $"{{server: {Server}, certificate-authority-data: {CaData}}}", "{server: https://127.0.0.1:1}")
            + Entries("user", $"{{token: {_cluster.Server.AdminToken}}}", "{token: second-secret-token}")
            + Entries("context", "{cluster: twin, user: twin}", "{cluster: twin, user: twin, namespace: other}"));
        // As the second file of KUBECONFIG too: client-go reports every file that fails to load.
        var good = Write("good", $"apiVersion: v1\nkind: Config\ncurrent-context: good\ncontexts:\n- name: good\n  context: {{cluster: g, user: g}}\nclusters:\n- name: g\n  cluster: {{server: {Server}, certificate-authority-data: {CaData}}}\nusers:\n- name: g\n  user: {{token: {_cluster.Server.AdminToken}}}\n");

        foreach (var paths in new[] { new[] { path }, new[] { good, path } })
        {
            var kubeconfig = string.Join(Path.PathSeparator, paths);
            var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(null, null, n => n == "KUBECONFIG" ? kubeconfig : null, Path.Combine(_root, "no-pod")));

            Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
            Assert.Contains($"lists two {kind}s named \"twin\"", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("second-secret-token", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(_cluster.Server.AdminToken, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_same_user_name_in_two_files_is_the_first_files_user()
    {
        var withContext = Write("with-context", $"apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context: {{cluster: c, user: admin}}\nclusters:\n- name: c\n  cluster: {{server: {Server}, certificate-authority-data: {CaData}}}\nusers:\n- name: admin\n  user: {{token: {_cluster.Server.AdminToken}}}\n");
        var stale = Write("stale", "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: stale-token}\n");

        var first = KubeconfigFiles.Load([withContext, stale], context: null);
        var reversed = KubeconfigFiles.Load([stale, withContext], context: null);

        Assert.Equal(_cluster.Server.AdminToken, first.AccessToken);
        Assert.Equal("stale-token", reversed.AccessToken);
        await AssertConnectsAsync(first);
    }

    [Fact]
    public async Task A_user_with_token_and_tokenFile_uses_the_file_while_it_can_be_read_as_client_go_does()
    {
        Write("secrets/token", _cluster.Server.AdminToken + "\n");
        string Config(string name, string token, string tokenFile) => Write(name, $"apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nclusters:\n- name: c\n  cluster: {{server: {Server}, certificate-authority-data: {CaData}}}\nusers:\n- name: u\n  user:\n    token: {token}\n    tokenFile: {tokenFile}\n");

        // The file wins over a stale inline token.
        await AssertConnectsAsync(KubeconfigFiles.Load([Config("config", "stale-inline-token", "secrets/token")], context: null));
        // A file that cannot be read leaves the inline token.
        await AssertConnectsAsync(KubeconfigFiles.Load([Config("config2", _cluster.Server.AdminToken, "secrets/missing")], context: null));
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // the plugin is a shell script
    private string ExecKubeconfig(string script, string interactiveMode, bool provideClusterInfo = false, string args = "[\"--label\", \"two words\"]")
    {
        var plugin = Write("bin/credential-plugin", "#!/bin/sh\n" + script);
        File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return Write("config", $"""
            apiVersion: v1
            kind: Config
            current-context: prod
            contexts:
            - name: prod
              context: {"{"}cluster: c, user: u{"}"}
            clusters:
            - name: c
              cluster: {"{"}server: {Server}, certificate-authority-data: {CaData}{"}"}
            users:
            - name: u
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: ./bin/credential-plugin
                  args: {args}
                  interactiveMode: {interactiveMode}
                  provideClusterInfo: {(provideClusterInfo ? "true" : "false")}
            """);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task An_exec_plugin_gets_an_ExecCredential_that_is_not_interactive_and_its_token_is_used()
    {
        var info = Path.Combine(_root, "exec-info.json");
        var arguments = Path.Combine(_root, "arguments");
        var path = ExecKubeconfig($"""
            printf '%s' "$KUBERNETES_EXEC_INFO" > {info}
            printf '%s\n' "$@" > {arguments}
            echo '{"{"}"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"{"}"token":"{_cluster.Server.AdminToken}"{"}"}{"}"}'
            """, "IfAvailable", provideClusterInfo: true);

        using var connection = ClusterConnection.Open(path);
        var session = new ClusterSession(connection, _cluster.Log);
        await RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None);

        using var execInfo = JsonDocument.Parse(File.ReadAllText(info));
        Assert.Equal("ExecCredential", execInfo.RootElement.GetProperty("kind").GetString());
        Assert.Equal("client.authentication.k8s.io/v1", execInfo.RootElement.GetProperty("apiVersion").GetString());
        Assert.False(execInfo.RootElement.GetProperty("spec").GetProperty("interactive").GetBoolean());
        Assert.Equal(Server, execInfo.RootElement.GetProperty("spec").GetProperty("cluster").GetProperty("server").GetString());
        Assert.Equal(["--label", "two words"], File.ReadAllLines(arguments));
        Assert.DoesNotContain(_cluster.Server.AdminToken, _cluster.Log.All);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void An_exec_plugin_that_must_prompt_is_refused_without_running_it()
    {
        var ran = Path.Combine(_root, "ran");
        var path = ExecKubeconfig($"touch {ran}\n", "Always");

        var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(path));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Contains("interactiveMode Always", error.Message);
        Assert.False(File.Exists(ran));
    }

    [Fact]
    public async Task A_clusters_proxy_url_carries_its_api_requests()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var connects = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var proxy = RunConnectProxyAsync(listener, connects, stop.Token);
        var path = Write("config", $"""
            apiVersion: v1
            kind: Config
            current-context: prod
            contexts:
            - name: prod
              context: {"{"}cluster: c, user: u{"}"}
            clusters:
            - name: c
              cluster:
                server: {Server}
                certificate-authority-data: {CaData}
                proxy-url: http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}
            users:
            - name: u
              user: {"{"}token: {_cluster.Server.AdminToken}{"}"}
            """);

        await AssertConnectsAsync(KubeconfigFiles.Load([path], context: null));

        Assert.Contains($"CONNECT {_cluster.Server.BaseUri.Authority}", connects);
        await stop.CancelAsync();
        listener.Stop();
        await proxy;
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task An_exec_plugins_arguments_arrive_as_written_backslashes_and_quotes_included()
    {
        var arguments = Path.Combine(_root, "arguments");
        string[] expected = [@"C:\Program Files\oc", @"a b\", "say \"hi\"", @"x\\""y", "", @"plain\path"];
        var yamlList = "[" + string.Join(", ", expected.Select(a => "'" + a.Replace("'", "''", StringComparison.Ordinal) + "'")) + "]";
        var path = ExecKubeconfig($"""
            printf '%s\n' "$@" > {arguments}
            echo '{"{"}"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"{"}"token":"{_cluster.Server.AdminToken}"{"}"}{"}"}'
            """, "Never", args: yamlList);

        await AssertConnectsAsync(KubeconfigFiles.Load([path], context: null));

        Assert.Equal(expected, File.ReadAllLines(arguments));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void An_exec_plugin_that_prints_its_token_in_another_form_is_refused_without_quoting_it()
    {
        // A home-made plugin that prints the token itself (or as YAML) instead of an ExecCredential.
        var path = ExecKubeconfig("echo 'token: sha256~S3cretPluginToken'\n", "Never");

        var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(path));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Contains("credential-plugin", error.Message);
        Assert.Contains("did not print an ExecCredential", error.Message);
        Assert.DoesNotContain("S3cretPluginToken", error.Message);
        Assert.DoesNotContain("S3cretPluginToken", error.ToString());
        Assert.DoesNotContain("S3cretPluginToken", error.InnerException?.ToString() ?? "");
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task An_exec_plugin_whose_renewed_token_is_unreadable_fails_with_a_code_and_without_quoting_it()
    {
        var runs = Path.Combine(_root, "runs");
        var expired = "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" + _cluster.Server.AdminToken + "\",\"expirationTimestamp\":\"2020-01-01T00:00:00Z\"}}";
        var path = ExecKubeconfig($"""
            echo run >> {runs}
            if [ "$(wc -l < {runs})" -le 1 ]; then echo '{expired}'; else echo 'sha256~S3cretRenewedToken'; fi
            """, "Never");

        using var connection = ClusterConnection.Open(path);
        var session = new ClusterSession(connection, _cluster.Log);
        var error = await Assert.ThrowsAsync<VddkException>(() => RegistryCredentialsStep.RunAsync(session, new BucketCredentials("a", "b"), CancellationToken.None));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Contains("could not be renewed", error.Message);
        Assert.DoesNotContain("S3cretRenewedToken", error.Message);
        Assert.DoesNotContain("S3cretRenewedToken", error.InnerException?.ToString() ?? "");
        Assert.DoesNotContain("S3cretRenewedToken", _cluster.Log.All);
    }

    [Fact]
    public void An_exec_plugin_that_is_not_installed_is_reported_with_its_install_hint()
    {
        var path = Write("config", $"apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nclusters:\n- name: c\n  cluster: {{server: {Server}}}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: vddk-no-such-credential-plugin\n      interactiveMode: Never\n      installHint: 'Install kubelogin: https://example.invalid/kubelogin'\n");

        var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(path));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Contains("vddk-no-such-credential-plugin", error.Message);
        Assert.Contains("Install kubelogin: https://example.invalid/kubelogin", error.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("# nothing yet\n")]
    [InlineData("---\n")]
    [InlineData("apiVersion: v1\nkind: Config\nclusters: null\nusers: []\ncontexts:\npreferences: {}\n")]
    public async Task An_empty_file_in_the_list_is_skipped_as_kubectl_skips_it(string empty)
    {
        var blank = Write("blank", empty);
        var real = Write("real", $"apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nclusters:\n- name: c\n  cluster: {{server: {Server}, certificate-authority-data: {CaData}}}\nusers:\n- name: u\n  user: {{token: {_cluster.Server.AdminToken}}}\n");

        await AssertConnectsAsync(KubeconfigFiles.Load([blank, real], context: null));
    }

    [Fact]
    public async Task A_proxy_url_with_a_user_and_password_authenticates_to_the_proxy_as_kubectl_does()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var connects = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var stop = new CancellationTokenSource();
        var proxy = RunConnectProxyAsync(listener, connects, stop.Token, requireAuthorization: "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("proxy-user:pa ss@word")));
        var path = Write("config", $"""
            apiVersion: v1
            kind: Config
            current-context: prod
            contexts:
            - name: prod
              context: {"{"}cluster: c, user: u{"}"}
            clusters:
            - name: c
              cluster:
                server: {Server}
                certificate-authority-data: {CaData}
                proxy-url: http://proxy-user:pa%20ss%40word@127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}
            users:
            - name: u
              user: {"{"}token: {_cluster.Server.AdminToken}{"}"}
            """);

        await AssertConnectsAsync(KubeconfigFiles.Load([path], context: null));

        Assert.Contains($"CONNECT {_cluster.Server.BaseUri.Authority}", connects);
        await stop.CancelAsync();
        listener.Stop();
        await proxy;
    }

    [Theory]
    [InlineData("socks4://proxy-user:s3cret-proxy-pw@proxy.example:1080")]
    [InlineData("ftp://proxy-user:s3cret-proxy-pw@proxy.example")]
    [InlineData("proxy-user:s3cret-proxy-pw@proxy.example:3128")] // no scheme
    [InlineData("/proxy.example")]
    public void A_proxy_url_that_cannot_be_used_is_refused_without_its_password(string proxyUrl)
    {
        var path = Write("config", $"apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n- name: prod\n  context: {{cluster: c, user: u}}\nclusters:\n- name: c\n  cluster: {{server: {Server}, proxy-url: '{proxyUrl}'}}\nusers:\n- name: u\n  user: {{token: t}}\n");

        var error = Assert.Throws<VddkException>(() => ClusterConnection.Open(path));

        Assert.Equal(ErrorCodes.ClusterConfigInvalid, error.Code);
        Assert.Contains("proxy-url", error.Message);
        Assert.Contains("proxy.example", error.Message);
        Assert.DoesNotContain("s3cret-proxy-pw", error.ToString());
        Assert.DoesNotContain("s3cret-proxy-pw", _cluster.Log.All);
    }

    /// <summary>The smallest HTTP CONNECT proxy: records each CONNECT line and tunnels the bytes.</summary>
    private static async Task RunConnectProxyAsync(System.Net.Sockets.TcpListener listener, System.Collections.Concurrent.ConcurrentQueue<string> connects, CancellationToken cancellationToken, string? requireAuthorization = null)
    {
        var tunnels = new List<Task>();
        try
        {
            while (true)
            {
                var client = await listener.AcceptTcpClientAsync(cancellationToken);
                tunnels.Add(Task.Run(async () =>
                {
                    using var _ = client;
                    var stream = client.GetStream();
                    var header = new StringBuilder();
                    var one = new byte[1];
                    while (!header.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(one, cancellationToken) == 1)
                    {
                        header.Append((char)one[0]);
                    }
                    var requestLine = header.ToString().Split("\r\n")[0];
                    if (requireAuthorization is not null && !header.ToString().Split("\r\n").Contains($"Proxy-Authorization: {requireAuthorization}", StringComparer.OrdinalIgnoreCase))
                    {
                        await stream.WriteAsync("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), cancellationToken);
                        return;
                    }
                    connects.Enqueue(requestLine[..requestLine.LastIndexOf(' ')]);
                    var target = requestLine.Split(' ')[1].Split(':');
                    using var upstream = new System.Net.Sockets.TcpClient();
                    await upstream.ConnectAsync(target[0], int.Parse(target[1], System.Globalization.CultureInfo.InvariantCulture), cancellationToken);
                    await stream.WriteAsync("HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray(), cancellationToken);
                    var up = upstream.GetStream();
                    await Task.WhenAny(stream.CopyToAsync(up, cancellationToken), up.CopyToAsync(stream, cancellationToken));
                }, cancellationToken));
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (System.Net.Sockets.SocketException)
        {
        }
    }
}
