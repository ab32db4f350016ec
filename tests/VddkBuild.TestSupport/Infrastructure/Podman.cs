using System.Globalization;
using System.Text.Json;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// podman as an independent checker of images the project writes or pushes: load, pull, run, inspect.
/// Every call runs with the sandbox's explicit environment and its own storage; nothing is read from /etc/containers.
/// </summary>
public sealed class Podman(ContainerToolsSandbox sandbox)
{
    public ContainerToolsSandbox Sandbox { get; } = sandbox;

    /// <summary>Requires podman and runc, and root (the sandbox's storage is a rootful one; CI runs as root).</summary>
    public static void Require()
    {
        Requires.Tool("podman");
        Requires.Tool("runc");
        Requires.That(GetEuid() == 0,
            "podman tests run rootful with a private storage root; run them as root (CI does).");
    }

    /// <summary>
    /// Pulls any containers-transports reference (docker://, oci:DIR[:tag], oci-archive:FILE[:tag]) into the sandbox's
    /// storage; returns the image ID. From an index, <paramref name="platform"/> ("os/arch[/variant]") picks the manifest (default: the host's).
    /// </summary>
    public async Task<string> PullAsync(string reference, RegistryAccess? access = null, string? platform = null, CancellationToken cancellationToken = default)
    {
        if (reference.StartsWith("oci:", StringComparison.Ordinal))
        {
            var (directory, tag) = SplitLayoutReference(reference["oci:".Length..]);
            return await LoadOciLayoutAsync(directory, tag, platform, cancellationToken);
        }
        access ??= RegistryAccess.Default;
        using var authFile = CallAuthFile.For(Sandbox, reference, access);
        List<string> args = ["pull", "--quiet", "--signature-policy", Sandbox.PolicyPath];
        if (platform is not null)
        {
            args.AddRange(["--platform", platform]);
        }
        if (!IsLocalTransport(reference))
        {
            args.Add($"--tls-verify={(access.TlsVerify ? "true" : "false")}");
            if (access.CertDir is not null)
            {
                args.AddRange(["--cert-dir", access.CertDir]);
            }
        }
        if (authFile.Path is not null)
        {
            args.AddRange(["--authfile", authFile.Path]);
        }
        args.Add(reference);
        var result = await RunPodmanAsync(args, TimeSpan.FromMinutes(5), cancellationToken);
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length > 0 ? lines[^1] : throw new InvalidOperationException($"'{result.CommandLine}' printed no image ID.");
    }

    /// <summary>Loads an OCI image archive (a tar of an OCI layout, as `skopeo copy ... oci-archive:` writes) and returns the image ID.</summary>
    public Task<string> LoadOciArchiveAsync(string path, string? tag = null, string? platform = null, CancellationToken cancellationToken = default) =>
        PullAsync("oci-archive:" + Path.GetFullPath(path) + (tag is null ? string.Empty : ":" + tag), null, platform, cancellationToken);

    /// <summary>Loads one image of an OCI layout folder (by its ref.name tag) and returns the image ID.</summary>
    /// <remarks>podman names an image pulled from <c>oci:DIR</c> after DIR and rejects upper-case paths (temp folders have them), so the layout goes in as an archive.</remarks>
    public async Task<string> LoadOciLayoutAsync(string directory, string? tag = null, string? platform = null, CancellationToken cancellationToken = default)
    {
        var archive = Path.Combine(Sandbox.Root, $"layout-{Guid.NewGuid():N}.tar");
        try
        {
            await System.Formats.Tar.TarFile.CreateFromDirectoryAsync(directory, archive, includeBaseDirectory: false, cancellationToken);
            return await LoadOciArchiveAsync(archive, tag, platform, cancellationToken);
        }
        finally
        {
            File.Delete(archive);
        }
    }

    /// <summary>Runs a container to completion (removed afterwards). Returns the result, whatever the exit code; call <see cref="ProcessResult.EnsureSuccess"/> as needed.</summary>
    public Task<ProcessResult> RunAsync(string image, ContainerRunOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ContainerRunOptions();
        List<string> args = ["run", "--rm", "--pull=never", "--network", options.Network];
        if (options.User is not null)
        {
            args.AddRange(["--user", options.User]);
        }
        foreach (var (hostPath, containerPath) in options.Volumes)
        {
            args.AddRange(["--volume", $"{Path.GetFullPath(hostPath)}:{containerPath}"]);
        }
        if (options.Entrypoint is not null)
        {
            args.Add("--entrypoint=" + options.Entrypoint);
        }
        args.Add(image);
        args.AddRange(options.Command);
        return ProcessRunner.RunAsync("podman", args, Sandbox.Environment, options.Timeout, cancellationToken: cancellationToken);
    }

    /// <summary>`podman image inspect` of one image: the first (only) element of its JSON array.</summary>
    public async Task<JsonDocument> InspectImageAsync(string image, CancellationToken cancellationToken = default)
    {
        var result = await RunPodmanAsync(["image", "inspect", image], TimeSpan.FromMinutes(1), cancellationToken);
        using var array = ContainerToolsSandbox.ParseJson(result);
        return JsonDocument.Parse(array.RootElement[0].GetRawText());
    }

    /// <summary>Pushes a local image to a registry reference (docker://host/repo:tag).</summary>
    public async Task PushAsync(string image, string destination, RegistryAccess? access = null, CancellationToken cancellationToken = default)
    {
        access ??= RegistryAccess.Default;
        using var authFile = CallAuthFile.For(Sandbox, destination, access);
        List<string> args = ["push", "--quiet", "--signature-policy", Sandbox.PolicyPath, $"--tls-verify={(access.TlsVerify ? "true" : "false")}"];
        if (access.CertDir is not null)
        {
            args.AddRange(["--cert-dir", access.CertDir]);
        }
        if (authFile.Path is not null)
        {
            args.AddRange(["--authfile", authFile.Path]);
        }
        args.AddRange([image, destination]);
        await RunPodmanAsync(args, TimeSpan.FromMinutes(5), cancellationToken);
    }

    /// <summary>
    /// `podman build` of <paramref name="containerfile"/> in <paramref name="contextDirectory"/>: the documented manual
    /// procedure, as a reference to compare the project's images with. Base images must already be in this storage
    /// (see <see cref="TagAsync"/>); nothing is pulled. Returns the image ID.
    /// </summary>
    public async Task<string> BuildAsync(string contextDirectory, string containerfile, string tag, CancellationToken cancellationToken = default)
    {
        var result = await RunPodmanAsync(
            ["build", "--quiet", "--pull=never", "--network", "none", "--signature-policy", Sandbox.PolicyPath, "--file", containerfile, "--tag", tag, contextDirectory],
            TimeSpan.FromMinutes(5), cancellationToken);
        var lines = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length > 0 ? lines[^1] : throw new InvalidOperationException($"'{result.CommandLine}' printed no image ID.");
    }

    /// <summary>Gives a local image another name (e.g. localhost/stand-in:latest for a Containerfile's FROM).</summary>
    public Task TagAsync(string image, string name, CancellationToken cancellationToken = default) =>
        RunPodmanAsync(["tag", image, name], TimeSpan.FromMinutes(1), cancellationToken);

    /// <summary>Any other podman command, in the sandbox's environment.</summary>
    public Task<ProcessResult> RunPodmanAsync(IEnumerable<string> arguments, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ProcessRunner.RunCheckedAsync("podman", arguments, Sandbox.Environment, timeout, cancellationToken: cancellationToken);

    /// <summary>"DIR[:tag]": a tag is what follows the last ':' after the last '/'.</summary>
    private static (string Directory, string? Tag) SplitLayoutReference(string pathAndTag)
    {
        var colon = pathAndTag.LastIndexOf(':');
        return colon > pathAndTag.LastIndexOf('/') ? (pathAndTag[..colon], pathAndTag[(colon + 1)..]) : (pathAndTag, null);
    }

    private static bool IsLocalTransport(string reference) =>
        reference.StartsWith("oci:", StringComparison.Ordinal) || reference.StartsWith("oci-archive:", StringComparison.Ordinal)
        || reference.StartsWith("docker-archive:", StringComparison.Ordinal) || reference.StartsWith("dir:", StringComparison.Ordinal)
        || reference.StartsWith("containers-storage:", StringComparison.Ordinal);

    private static uint GetEuid()
    {
        // /proc/self/status "Uid: real effective saved fs"; avoids P/Invoke for one number.
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
            {
                var fields = line["Uid:".Length..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                return uint.Parse(fields[1], CultureInfo.InvariantCulture);
            }
        }
        return uint.MaxValue;
    }
}
