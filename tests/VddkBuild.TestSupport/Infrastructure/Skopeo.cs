using System.Text.Json;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// skopeo as an independent reader of images: what the project wrote (oci:, oci-archive:) or pushed (docker://).
/// Every call runs with the sandbox's explicit environment and its accept-anything policy.
/// </summary>
public sealed class Skopeo(ContainerToolsSandbox sandbox)
{
    public ContainerToolsSandbox Sandbox { get; } = sandbox;

    public static void Require() => Requires.Tool("skopeo");

    /// <summary>`skopeo inspect`: the image's digest, labels, layers, env, architecture. For an index it picks <paramref name="platform"/> ("os/arch[/variant]", default the host's).</summary>
    public Task<JsonDocument> InspectAsync(string reference, RegistryAccess? access = null, string? platform = null, CancellationToken cancellationToken = default) =>
        InspectCoreAsync(reference, access, platform, [], cancellationToken);

    /// <summary>`skopeo inspect --raw`: the manifest or index exactly as stored.</summary>
    public Task<JsonDocument> InspectRawAsync(string reference, RegistryAccess? access = null, CancellationToken cancellationToken = default) =>
        InspectCoreAsync(reference, access, null, ["--raw"], cancellationToken);

    /// <summary>`skopeo inspect --config`: the image configuration (for an index, of <paramref name="platform"/>).</summary>
    public Task<JsonDocument> InspectConfigAsync(string reference, RegistryAccess? access = null, string? platform = null, CancellationToken cancellationToken = default) =>
        InspectCoreAsync(reference, access, platform, ["--config"], cancellationToken);

    /// <summary>`skopeo copy` between any two transports; <paramref name="all"/> copies every platform of an index.</summary>
    public async Task CopyAsync(string source, string destination, RegistryAccess? sourceAccess = null, RegistryAccess? destinationAccess = null, bool all = false, CancellationToken cancellationToken = default)
    {
        sourceAccess ??= RegistryAccess.Default;
        destinationAccess ??= RegistryAccess.Default;
        using var sourceAuth = CallAuthFile.For(Sandbox, source, sourceAccess);
        using var destinationAuth = CallAuthFile.For(Sandbox, destination, destinationAccess);
        List<string> args = ["--policy", Sandbox.PolicyPath, "copy", "--quiet"];
        if (all)
        {
            args.Add("--all");
        }
        AddAccess(args, "--src-", source, sourceAccess, sourceAuth);
        AddAccess(args, "--dest-", destination, destinationAccess, destinationAuth);
        args.AddRange([source, destination]);
        await ProcessRunner.RunCheckedAsync("skopeo", args, Sandbox.Environment, TimeSpan.FromMinutes(10), cancellationToken: cancellationToken);
    }

    private async Task<JsonDocument> InspectCoreAsync(string reference, RegistryAccess? access, string? platform, IReadOnlyList<string> mode, CancellationToken cancellationToken)
    {
        access ??= RegistryAccess.Default;
        using var authFile = CallAuthFile.For(Sandbox, reference, access);
        List<string> args = ["--policy", Sandbox.PolicyPath];
        if (platform is not null)
        {
            var parts = platform.Split('/');
            args.AddRange(["--override-os", parts[0], "--override-arch", parts[1]]);
            if (parts.Length > 2)
            {
                args.AddRange(["--override-variant", parts[2]]);
            }
        }
        args.Add("inspect");
        args.AddRange(mode);
        AddAccess(args, "--", reference, access, authFile);
        args.Add(reference);
        var result = await ProcessRunner.RunCheckedAsync("skopeo", args, Sandbox.Environment, TimeSpan.FromMinutes(2), cancellationToken: cancellationToken);
        return ContainerToolsSandbox.ParseJson(result);
    }

    private static void AddAccess(List<string> args, string prefix, string reference, RegistryAccess access, CallAuthFile authFile)
    {
        if (!reference.StartsWith("docker://", StringComparison.Ordinal))
        {
            return;
        }
        args.Add($"{prefix}tls-verify={(access.TlsVerify ? "true" : "false")}");
        if (access.CertDir is not null)
        {
            args.AddRange([$"{prefix}cert-dir", access.CertDir]);
        }
        if (authFile.Path is not null)
        {
            args.AddRange([$"{prefix}authfile", authFile.Path]);
        }
    }
}
