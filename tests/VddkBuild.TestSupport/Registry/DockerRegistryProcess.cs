using System.Diagnostics;
using System.Net.Http;
using System.Text;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.TestSupport.Registry;

/// <summary>
/// A real registry (Debian's <c>docker-registry</c>, distribution 2.8) on a free 127.0.0.1 port, with a generated
/// config: filesystem storage in a temporary folder (or S3), optional TLS, htpasswd or token auth. It is started
/// with an explicit environment (the workplace's AWS_CA_BUNDLE crashes its S3 driver), stopped by its own PID, and
/// its folder is removed on dispose.
/// </summary>
public sealed class DockerRegistryProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private Process _process;

    private DockerRegistryProcess(Process process, string directory, int port, bool tls)
    {
        _process = process;
        Directory = directory;
        Port = port;
        Tls = tls;
    }

    public string Directory { get; }

    public int Port { get; }

    public bool Tls { get; }

    /// <summary><c>127.0.0.1:port</c>, the registry part of image references.</summary>
    public string Authority => $"127.0.0.1:{Port}";

    public Uri BaseUri => new($"{(Tls ? "https" : "http")}://{Authority}/");

    public string StorageDirectory => Path.Combine(Directory, "storage");

    public int ProcessId => _process.Id;

    /// <summary>What the registry printed so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<DockerRegistryProcess> StartAsync(DockerRegistryOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new DockerRegistryOptions();
        var executable = Requires.Tool("docker-registry");
        var directory = Path.Combine(Path.GetTempPath(), "vddk-registry-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Path.Combine(directory, "storage"));
        var port = FreePort.Next();
        var configPath = Path.Combine(directory, "config.yml");
        await File.WriteAllTextAsync(configPath, await BuildConfigAsync(options, directory, port, cancellationToken), cancellationToken);

        var process = Launch(executable, configPath, directory);
        var registry = new DockerRegistryProcess(process, directory, port, options.Tls is not null);
        registry.Attach(process);
        try
        {
            await registry.WaitUntilReadyAsync(cancellationToken);
        }
        catch
        {
            await registry.DisposeAsync();
            throw;
        }
        return registry;
    }

    private static Process Launch(string executable, string configPath, string directory)
    {
        var startInfo = new ProcessStartInfo(executable)
        {
            ArgumentList = { "serve", configPath },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        // Explicit environment: nothing inherited (AWS_CA_BUNDLE, proxies, REGISTRY_* overrides).
        startInfo.Environment.Clear();
        startInfo.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        startInfo.Environment["HOME"] = directory;
        return Process.Start(startInfo) ?? throw new InvalidOperationException("docker-registry did not start");
    }

    private void Attach(Process process)
    {
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>
    /// Restart in place: kills the process (as a crash or a pod restart would, in-flight requests are cut), waits
    /// <paramref name="downtime"/>, and starts it again with the same config, port, secret and storage.
    /// </summary>
    public async Task RestartAsync(TimeSpan downtime = default, CancellationToken cancellationToken = default)
    {
        await StopAsync();
        if (downtime > TimeSpan.Zero)
        {
            await Task.Delay(downtime, cancellationToken);
        }
        await StartAgainAsync(cancellationToken);
    }

    /// <summary>Starts a stopped registry again on the same port with the same config and storage.</summary>
    public async Task StartAgainAsync(CancellationToken cancellationToken = default)
    {
        if (!_process.HasExited)
        {
            throw new InvalidOperationException("The registry is still running; stop it first.");
        }
        var process = Launch(Requires.Tool("docker-registry"), Path.Combine(Directory, "config.yml"), Directory);
        var old = _process;
        _process = process;
        old.Dispose();
        Attach(process);
        await WaitUntilReadyAsync(cancellationToken);
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            if (_output.Length < 1_000_000)
            {
                _output.AppendLine(line);
            }
        }
    }

    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var handler = new SocketsHttpHandler { UseProxy = false, SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true } };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"docker-registry exited with code {_process.ExitCode}:\n{Output}");
            }
            try
            {
                using var response = await client.GetAsync(new Uri(BaseUri, "/v2/"), cancellationToken);
                return; // any HTTP answer (200 or 401) means it serves
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
            await Task.Delay(100, cancellationToken);
        }
        throw new TimeoutException($"docker-registry on {Authority} did not become ready:\n{Output}");
    }

    private static async Task<string> BuildConfigAsync(DockerRegistryOptions options, string directory, int port, CancellationToken cancellationToken)
    {
        var yaml = new StringBuilder();
        yaml.AppendLine("version: 0.1");
        yaml.AppendLine("log:");
        yaml.AppendLine("  level: info");
        yaml.AppendLine("  accesslog:");
        yaml.AppendLine("    disabled: true");
        yaml.AppendLine("storage:");
        if (options.S3 is { } s3)
        {
            yaml.AppendLine("  s3:");
            yaml.AppendLine($"    accesskey: {Quote(s3.AccessKey)}");
            yaml.AppendLine($"    secretkey: {Quote(s3.SecretKey)}");
            yaml.AppendLine($"    region: {Quote(s3.Region)}");
            yaml.AppendLine($"    regionendpoint: {Quote(s3.RegionEndpoint)}");
            yaml.AppendLine($"    bucket: {Quote(s3.Bucket)}");
            yaml.AppendLine($"    secure: {(s3.RegionEndpoint.StartsWith("https", StringComparison.Ordinal) ? "true" : "false")}");
            yaml.AppendLine("    v4auth: true");
            yaml.AppendLine($"    rootdirectory: {Quote(s3.RootDirectory)}");
        }
        else
        {
            yaml.AppendLine("  filesystem:");
            yaml.AppendLine($"    rootdirectory: {Quote(Path.Combine(directory, "storage"))}");
        }
        yaml.AppendLine("  delete:");
        yaml.AppendLine("    enabled: true");
        yaml.AppendLine("  maintenance:");
        yaml.AppendLine("    uploadpurging:");
        yaml.AppendLine("      enabled: false");
        yaml.AppendLine("http:");
        yaml.AppendLine($"  addr: 127.0.0.1:{port}");
        yaml.AppendLine($"  secret: {Guid.NewGuid():N}");
        if (options.Tls is { } tls)
        {
            yaml.AppendLine("  tls:");
            yaml.AppendLine($"    certificate: {Quote(tls.ServerCertificatePath)}");
            yaml.AppendLine($"    key: {Quote(tls.ServerKeyPath)}");
        }
        if (options.HtpasswdUsers is { Count: > 0 } users)
        {
            var htpasswd = Path.Combine(directory, "htpasswd");
            var lines = new StringBuilder();
            foreach (var (user, password) in users)
            {
                lines.AppendLine(await HashPasswordAsync(user, password, cancellationToken));
            }
            await File.WriteAllTextAsync(htpasswd, lines.ToString(), cancellationToken);
            yaml.AppendLine("auth:");
            yaml.AppendLine("  htpasswd:");
            yaml.AppendLine("    realm: vddk-test");
            yaml.AppendLine($"    path: {Quote(htpasswd)}");
        }
        else if (options.Token is { } token)
        {
            yaml.AppendLine("auth:");
            yaml.AppendLine("  token:");
            yaml.AppendLine($"    realm: {Quote(token.Realm)}");
            yaml.AppendLine($"    service: {Quote(token.Service)}");
            yaml.AppendLine($"    issuer: {Quote(token.Issuer)}");
            yaml.AppendLine($"    rootcertbundle: {Quote(token.RootCertBundlePath)}");
        }
        return yaml.ToString();
    }

    /// <summary>A bcrypt htpasswd line from apache2-utils' <c>htpasswd -B -b -n</c> (docker-registry accepts only bcrypt).</summary>
    private static async Task<string> HashPasswordAsync(string user, string password, CancellationToken cancellationToken)
    {
        var htpasswd = Requires.Tool("htpasswd");
        var startInfo = new ProcessStartInfo(htpasswd) { ArgumentList = { "-B", "-b", "-n", user, password }, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(startInfo)!;
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException("htpasswd failed: " + await process.StandardError.ReadToEndAsync(cancellationToken));
        }
        return output.Trim();
    }

    private static string Quote(string value) => "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>Stops the process this object started (by PID, never by name).</summary>
    public async Task StopAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
