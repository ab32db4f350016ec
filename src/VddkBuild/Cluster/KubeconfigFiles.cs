using System.Net;
using System.Text.Json;
using k8s;
using k8s.Exceptions;
using k8s.KubeConfigModels;
using YamlDotNet.RepresentationModel;
using VddkBuild.Registry;
using KubeCluster = k8s.KubeConfigModels.Cluster;

namespace VddkBuild.Cluster;

/// <summary>
/// Reads kubeconfig files the way kubectl (client-go clientcmd) does, where KubernetesClient's own loading falls short:
/// several files (KUBECONFIG) merged with the first file winning per cluster, user and context name and for
/// current-context, a file naming two entries alike refused; paths in each file relative to that file's directory;
/// <c>tokenFile</c> (re-read, and winning over <c>token</c> while readable); <c>proxy-url</c>; and an
/// exec plugin told the truth (an <c>ExecCredential</c> that is never interactive, the cluster when it asks for it).
/// </summary>
public static class KubeconfigFiles
{
    /// <param name="paths">Existing kubeconfig files, in order of precedence.</param>
    /// <param name="context">VddkKubeContext; null for the merged current-context.</param>
    public static KubernetesClientConfiguration Load(IReadOnlyList<string> paths, string? context)
    {
        var merged = new K8SConfiguration { Kind = "Config", ApiVersion = "v1", Clusters = [], Users = [], Contexts = [] };
        var extras = new Dictionary<(string Kind, string Name, string Field), string>();
        foreach (var path in paths)
        {
            var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
            var file = KubernetesClientConfiguration.LoadKubeConfig(new FileInfo(path), useRelativePaths: false);
            if (file is null)
            {
                continue; // an empty file, as kubectl allows
            }
            RefuseDuplicateNames(path, "cluster", file.Clusters?.Select(c => c.Name));
            RefuseDuplicateNames(path, "user", file.Users?.Select(u => u.Name));
            RefuseDuplicateNames(path, "context", file.Contexts?.Select(c => c.Name));
            merged.CurrentContext = string.IsNullOrEmpty(merged.CurrentContext) ? file.CurrentContext : merged.CurrentContext;
            var newClusters = Named(file.Clusters, c => c.Name).Where(c => merged.Clusters.All(m => m.Name != c.Name)).ToList();
            var newUsers = Named(file.Users, u => u.Name).Where(u => merged.Users.All(m => m.Name != u.Name)).ToList();
            var newContexts = Named(file.Contexts, c => c.Name).Where(c => merged.Contexts.All(m => m.Name != c.Name)).ToList();
            foreach (var endpoint in newClusters.Select(c => c.ClusterEndpoint).OfType<ClusterEndpoint>())
            {
                endpoint.CertificateAuthority = Resolve(directory, endpoint.CertificateAuthority);
            }
            foreach (var fileUser in newUsers.Select(u => u.UserCredentials).OfType<UserCredentials>())
            {
                fileUser.ClientCertificate = Resolve(directory, fileUser.ClientCertificate);
                fileUser.ClientKey = Resolve(directory, fileUser.ClientKey);
                if (fileUser.ExternalExecution is { Command: { } command } exec && command.Contains('/', StringComparison.Ordinal))
                {
                    exec.Command = Resolve(directory, command);
                }
            }
            // What the model drops, read from the file itself, for the entries this file contributes.
            foreach (var (key, value) in ReadExtras(path, directory))
            {
                if (key.Kind == "cluster" ? newClusters.Any(c => c.Name == key.Name) : newUsers.Any(u => u.Name == key.Name))
                {
                    extras[key] = value;
                }
            }
            merged.Clusters = merged.Clusters.Concat(newClusters).ToList();
            merged.Users = merged.Users.Concat(newUsers).ToList();
            merged.Contexts = merged.Contexts.Concat(newContexts).ToList();
        }

        var files = string.Join(", ", paths);
        var name = context ?? (string.IsNullOrEmpty(merged.CurrentContext) ? null : merged.CurrentContext);
        var contexts = string.Join(", ", merged.Contexts.Select(c => c.Name));
        if (name is null)
        {
            throw new KubeConfigException($"it has no current-context; set VddkKubeContext to one of its contexts ({(contexts.Length == 0 ? "it has none" : contexts)}) or run 'oc login'");
        }
        var selected = merged.Contexts.FirstOrDefault(c => c.Name == name)
            ?? throw new KubeConfigException($"it has no context \"{name}\" (contexts: {(contexts.Length == 0 ? "none" : contexts)})");
        var clusterName = selected.ContextDetails?.Cluster;
        var cluster = merged.Clusters.FirstOrDefault(c => c.Name == clusterName)
            ?? throw new KubeConfigException($"context \"{name}\" names cluster \"{clusterName}\", which none of {files} defines");
        var userName = selected.ContextDetails?.User;
        User? user = null;
        if (!string.IsNullOrEmpty(userName))
        {
            user = merged.Users.FirstOrDefault(u => u.Name == userName)
                ?? throw new KubeConfigException($"context \"{name}\" names user \"{userName}\", which none of {files} defines");
        }
        // KubernetesClient matches names ignoring case; hand it only the selected entries so it cannot pick another.
        var single = new K8SConfiguration
        {
            Kind = "Config",
            ApiVersion = "v1",
            CurrentContext = name,
            Contexts = [selected],
            Clusters = [cluster],
            Users = user is null ? [] : [user],
        };
        KubeconfigTokenFile? tokenFileAuth = null;
        if (user?.UserCredentials is { } credentials)
        {
            if (extras.TryGetValue(("user", user.Name, "tokenFile"), out var tokenFile))
            {
                // client-go: the file wins over token whenever it can be read, and is re-read during the run.
                tokenFileAuth = new KubeconfigTokenFile(tokenFile, credentials.Token, user.Name);
                credentials.Token = tokenFileAuth.Token;
            }
            if (credentials.ExternalExecution is { } exec)
            {
                PrepareExec(exec, cluster, extras.GetValueOrDefault(("user", user.Name, "interactiveMode")), user.Name);
            }
        }
        KubernetesClientConfiguration configuration;
        try
        {
            configuration = KubernetesClientConfiguration.BuildConfigFromConfigObject(single, name);
        }
        catch (KubeConfigException ex) when (user?.UserCredentials?.ExternalExecution is { } exec && ex.Message.StartsWith("external exec", StringComparison.Ordinal))
        {
            // The exec plugin failed (it runs here first); its output is never quoted, its installHint is.
            var hint = extras.GetValueOrDefault(("user", user.Name, "installHint"));
            throw new KubeConfigException($"user \"{user.Name}\" gets its credentials from the exec plugin '{exec.Command}': {Describe(ex, hint)}");
        }
        if (tokenFileAuth is not null)
        {
            configuration.TokenProvider = tokenFileAuth;
        }
        if (extras.TryGetValue(("cluster", cluster.Name, "proxy-url"), out var proxyUrl))
        {
            if (!Uri.TryCreate(proxyUrl, UriKind.Absolute, out var proxy) || proxy.Scheme is not ("http" or "https" or "socks5"))
            {
                throw new KubeConfigException($"cluster \"{cluster.Name}\" has proxy-url '{WithoutUserInfo(proxyUrl)}', which is not an http, https or socks5 URL");
            }
            // kubectl sends everything for this cluster through proxy-url, whatever HTTPS_PROXY and NO_PROXY say, and
            // authenticates to the proxy with the URL's user and password. The address handed on has none: .NET puts
            // the proxy's address into its error messages.
            var proxyCredentials = EnvironmentProxy.CredentialsOf(proxy);
            var address = EnvironmentProxy.WithoutUserInfo(proxy)!;
            configuration.FirstMessageHandlerSetup = handler =>
            {
                handler.Proxy = new WebProxy(address) { Credentials = proxyCredentials };
                handler.UseProxy = true;
            };
        }
        return configuration;
    }

    /// <summary>
    /// KubernetesClient's message for a failed exec plugin or token file, fit for a log: the first line, without the
    /// names of wrapped exception types. System.Text.Json quotes the text it could not parse, and that text is the
    /// plugin's standard output (a token printed as it is, or as YAML): such a failure is described, never quoted. A
    /// plugin that could not be started gets the kubeconfig's installHint, as kubectl shows it.
    /// </summary>
    public static string Describe(KubeConfigException exception, string? installHint = null)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var message = exception.Message;
        if (message.Contains("deserialization", StringComparison.Ordinal) || message.Contains("JsonException", StringComparison.Ordinal))
        {
            return "it did not print an ExecCredential (JSON with apiVersion, kind and status.token) on its standard output; "
                + "what it printed is not shown, as it may be a credential. Run the plugin by hand to see its output and errors";
        }
        var first = message.Split('\n', 2)[0].TrimEnd('\r').Replace("k8s.Exceptions.KubeConfigException: ", "", StringComparison.Ordinal).TrimEnd().TrimEnd('.');
        if (!string.IsNullOrWhiteSpace(installHint) && message.StartsWith("external exec failed due to: ", StringComparison.Ordinal))
        {
            first += $". {installHint.Trim().TrimEnd('.')}";
        }
        return first;
    }

    /// <summary>A URL as it can be shown: any user and password before the host replaced by <c>***</c>.</summary>
    private static string WithoutUserInfo(string url)
    {
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        var start = scheme < 0 ? 0 : scheme + 3;
        var end = url.IndexOfAny(['/', '?', '#'], start);
        var at = url.AsSpan(start, (end < 0 ? url.Length : end) - start).LastIndexOf('@');
        return at < 0 ? url : string.Concat(url.AsSpan(0, start), "***", url.AsSpan(start + at));
    }

    /// <summary>
    /// An argument as Process joins and splits them again (the rules of CommandLineToArgvW, which .NET also applies on
    /// Unix): quoted when it is empty or has whitespace or a quote; inside quotes, backslashes are doubled only before
    /// a quote or the closing quote, where they would otherwise escape it.
    /// </summary>
    private static string QuotedArgument(string argument)
    {
        if (argument.Length > 0 && !argument.Any(char.IsWhiteSpace) && !argument.Contains('"', StringComparison.Ordinal))
        {
            return argument;
        }
        var quoted = new System.Text.StringBuilder("\"");
        for (var i = 0; i < argument.Length; i++)
        {
            var backslashes = 0;
            while (i < argument.Length && argument[i] == '\\')
            {
                backslashes++;
                i++;
            }
            if (i == argument.Length)
            {
                quoted.Append('\\', backslashes * 2);
                break;
            }
            if (argument[i] == '"')
            {
                quoted.Append('\\', (backslashes * 2) + 1).Append('"');
            }
            else
            {
                quoted.Append('\\', backslashes).Append(argument[i]);
            }
        }
        return quoted.Append('"').ToString();
    }

    private static IEnumerable<T> Named<T>(IEnumerable<T>? items, Func<T, string?> name) =>
        (items ?? []).Where(i => !string.IsNullOrEmpty(name(i))).DistinctBy(name);

    private static string? Resolve(string directory, string? path) =>
        string.IsNullOrEmpty(path) || Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(directory, path));

    /// <summary>
    /// users[].user.tokenFile and .exec.interactiveMode, clusters[].cluster.proxy-url (the first entry of a name in the
    /// file wins, as in the model).
    /// </summary>
    private static Dictionary<(string Kind, string Name, string Field), string> ReadExtras(string path, string directory)
    {
        var result = new Dictionary<(string Kind, string Name, string Field), string>();
        var yaml = new YamlStream();
        using (var reader = new StreamReader(path))
        {
            yaml.Load(reader);
        }
        if (yaml.Documents.Count == 0 || yaml.Documents[0].RootNode is not YamlMappingNode root)
        {
            return result;
        }
        void Collect(string list, string kind, string body, params (string[] Path, bool IsPath)[] fields)
        {
            if (!root.Children.TryGetValue(new YamlScalarNode(list), out var node) || node is not YamlSequenceNode entries)
            {
                return;
            }
            foreach (var entry in entries.OfType<YamlMappingNode>())
            {
                if (Scalar(entry, "name") is not { Length: > 0 } name || !entry.Children.TryGetValue(new YamlScalarNode(body), out var inner))
                {
                    continue;
                }
                foreach (var (fieldPath, isPath) in fields)
                {
                    YamlNode? current = inner;
                    foreach (var segment in fieldPath[..^1])
                    {
                        current = current is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(segment), out var next) ? next : null;
                    }
                    if (current is YamlMappingNode parent && Scalar(parent, fieldPath[^1]) is { Length: > 0 } value)
                    {
                        result.TryAdd((kind, name, fieldPath[^1]), isPath ? Resolve(directory, value)! : value);
                    }
                }
            }
        }
        Collect("users", "user", "user", (["tokenFile"], true), (["exec", "interactiveMode"], false), (["exec", "installHint"], false));
        Collect("clusters", "cluster", "cluster", (["proxy-url"], false));
        return result;
    }

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode scalar ? scalar.Value : null;

    /// <summary>
    /// client-go refuses a file that lists two clusters, users or contexts of the same name ("duplicate name in list",
    /// kubectl stops), whatever its place in KUBECONFIG: which of the two was meant is not for a build to guess. Only
    /// the name is quoted (client-go's message prints the whole list, credentials included).
    /// </summary>
    private static void RefuseDuplicateNames(string path, string kind, IEnumerable<string?>? names)
    {
        var duplicate = (names ?? []).Where(n => !string.IsNullOrEmpty(n)).GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1)?.Key;
        if (duplicate is not null)
        {
            throw new KubeConfigException(
                $"'{path}' lists two {kind}s named \"{duplicate}\", which kubectl refuses too (duplicate name in list: it cannot load the file either); edit the file to remove or rename the one that is not meant");
        }
    }

    /// <summary>
    /// KubernetesClient tells a plugin kind "ExecCredentials" and interactive=true; client-go sends an ExecCredential
    /// that is interactive only on a terminal with interactiveMode other than Never, and refuses interactiveMode Always
    /// without one. A build never has a terminal to prompt on: the plugin is told so, and an Always plugin is refused.
    /// The variable is set through the plugin's own env list, which KubernetesClient applies after its own.
    /// </summary>
    private static void PrepareExec(ExternalExecution exec, KubeCluster cluster, string? interactiveMode, string userName)
    {
        if (string.Equals(interactiveMode, "Always", StringComparison.Ordinal))
        {
            throw new KubeConfigException(
                $"user \"{userName}\" gets its credentials from the exec plugin '{exec.Command}' with interactiveMode Always, which needs a terminal a build does not have; " +
                "log in first so that the plugin has cached credentials, or use a kubeconfig with a token (oc login --token, or a service account's)");
        }
        var spec = new Dictionary<string, object> { ["interactive"] = false };
        if (exec.ProvideClusterInfo && cluster.ClusterEndpoint is { } endpoint)
        {
            var info = new Dictionary<string, object> { ["server"] = endpoint.Server };
            if (!string.IsNullOrEmpty(endpoint.TlsServerName)) info["tls-server-name"] = endpoint.TlsServerName;
            if (endpoint.SkipTlsVerify) info["insecure-skip-tls-verify"] = true;
            if (!string.IsNullOrEmpty(endpoint.CertificateAuthorityData)) info["certificate-authority-data"] = endpoint.CertificateAuthorityData;
            else if (!string.IsNullOrEmpty(endpoint.CertificateAuthority) && File.Exists(endpoint.CertificateAuthority))
                info["certificate-authority-data"] = Convert.ToBase64String(File.ReadAllBytes(endpoint.CertificateAuthority));
            spec["cluster"] = info;
        }
        var execInfo = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["kind"] = "ExecCredential",
            ["apiVersion"] = exec.ApiVersion,
            ["spec"] = spec,
        });
        var environment = exec.EnvironmentVariables?.Where(v => !(v.TryGetValue("name", out var n) && n == "KUBERNETES_EXEC_INFO")).ToList() ?? [];
        environment.Add(new Dictionary<string, string> { ["name"] = "KUBERNETES_EXEC_INFO", ["value"] = execInfo });
        exec.EnvironmentVariables = environment;
        // KubernetesClient joins the arguments with spaces: an argument with a space must arrive as one.
        exec.Arguments = exec.Arguments?.Select(QuotedArgument).ToList();
    }
}
