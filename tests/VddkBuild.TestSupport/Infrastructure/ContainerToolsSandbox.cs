using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// A private configuration and storage root for podman and skopeo, so tests never touch /etc/containers,
/// /var/lib/containers or ~/.config, and parallel tests never share image storage:
/// containers.conf (runc - crun fails on these hosts -, no default ulimits, cgroupfs, file event log),
/// storage.conf (its own graph and run roots), registries.conf (no search registries, insecure loopback
/// registries added by <see cref="AddInsecureRegistry"/>), a policy.json that accepts any image (tests check
/// content, not signatures) and an auth file (<see cref="SetCredentials"/>). All of it reaches the tools through
/// <see cref="Environment"/> (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, CONTAINERS_REGISTRIES_CONF, REGISTRY_AUTH_FILE).
/// Disposing deletes the root.
/// </summary>
public sealed class ContainerToolsSandbox : IDisposable
{
    private readonly List<string> _insecureRegistries = [];
    private readonly Dictionary<string, RegistryCredentials> _credentials = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <param name="storageDriver">"vfs" works on any file system (overlay cannot stack on overlay); "overlay" is faster on ext4/xfs.</param>
    public ContainerToolsSandbox(string storageDriver = "vfs")
    {
        Root = Directory.CreateTempSubdirectory("vddkbuild-containers-").FullName;
        Directory.CreateDirectory(Path.Combine(Root, "tmp"));
        File.WriteAllText(ContainersConfPath, $"""
            [containers]
            default_ulimits = []

            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            events_logfile_path = "{Path.Combine(Root, "events.log")}"
            tmp_dir = "{Path.Combine(Root, "libpod-tmp")}"
            image_copy_tmp_dir = "{Path.Combine(Root, "tmp")}"
            """);
        File.WriteAllText(StorageConfPath, $"""
            [storage]
            driver = "{storageDriver}"
            graphroot = "{Path.Combine(Root, "storage")}"
            runroot = "{Path.Combine(Root, "run")}"
            """);
        File.WriteAllText(PolicyPath, """{"default":[{"type":"insecureAcceptAnything"}]}""");
        WriteRegistriesConf();
        WriteAuthFile();
        Environment = ChildEnvironment.Minimal()
            .With("TMPDIR", Path.Combine(Root, "tmp"))
            .With("CONTAINERS_CONF", ContainersConfPath)
            .With("CONTAINERS_STORAGE_CONF", StorageConfPath)
            .With("CONTAINERS_REGISTRIES_CONF", RegistriesConfPath)
            .With("REGISTRY_AUTH_FILE", AuthFilePath);
    }

    public string Root { get; }

    public string ContainersConfPath => Path.Combine(Root, "containers.conf");

    public string StorageConfPath => Path.Combine(Root, "storage.conf");

    public string RegistriesConfPath => Path.Combine(Root, "registries.conf");

    /// <summary>Pass with <c>--signature-policy</c> (podman) or <c>--policy</c> (skopeo).</summary>
    public string PolicyPath => Path.Combine(Root, "policy.json");

    /// <summary>The auth file (docker config format, mode 0600) both tools read through REGISTRY_AUTH_FILE.</summary>
    public string AuthFilePath => Path.Combine(Root, "auth.json");

    /// <summary>The environment every podman/skopeo call of this sandbox uses; it inherits nothing else.</summary>
    public ChildEnvironment Environment { get; }

    /// <summary>Lets podman reach <paramref name="hostAndPort"/> (e.g. 127.0.0.1:5000) over plain HTTP or unverified TLS.</summary>
    public void AddInsecureRegistry(string hostAndPort)
    {
        lock (_lock)
        {
            if (!_insecureRegistries.Contains(hostAndPort))
            {
                _insecureRegistries.Add(hostAndPort);
                WriteRegistriesConf();
            }
        }
    }

    /// <summary>Stores credentials for <paramref name="registry"/> (host[:port]) in the auth file; never on a command line.</summary>
    public void SetCredentials(string registry, RegistryCredentials credentials)
    {
        lock (_lock)
        {
            _credentials[registry] = credentials;
            WriteAuthFile();
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A leftover temp folder must not fail the test that used it.
        }
    }

    private void WriteRegistriesConf()
    {
        var text = new StringBuilder("unqualified-search-registries = []\n");
        foreach (var registry in _insecureRegistries)
        {
            text.Append("\n[[registry]]\n").Append($"location = \"{registry}\"\n").Append("insecure = true\n");
        }
        WriteAtomically(RegistriesConfPath, text.ToString(), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
    }

    private void WriteAuthFile()
    {
        var auths = new JsonObject();
        foreach (var (registry, credentials) in _credentials)
        {
            var token = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.UserName}:{credentials.Password}"));
            auths[registry] = new JsonObject { ["auth"] = token };
        }
        WriteAtomically(AuthFilePath, new JsonObject { ["auths"] = auths }.ToJsonString(), UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private static void WriteAtomically(string path, string content, UnixFileMode mode)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw LinuxOnly.NotSupported();
        }
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = mode }))
        {
            stream.Write(Encoding.UTF8.GetBytes(content));
        }
        File.Move(temp, path, overwrite: true);
    }

    internal static JsonDocument ParseJson(ProcessResult result)
    {
        try
        {
            return JsonDocument.Parse(result.StandardOutput);
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"'{result.CommandLine}' did not print JSON: {ex.Message}\n{result.StandardOutput}", ex);
        }
    }
}
