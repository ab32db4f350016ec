namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>Options of <see cref="Podman.RunAsync"/>. Defaults match how Forklift runs the init container: no network, image's own entrypoint.</summary>
public sealed record ContainerRunOptions
{
    /// <summary>"uid[:gid]"; null keeps the image's USER.</summary>
    public string? User { get; init; }

    /// <summary>Bind mounts, host folder to container path.</summary>
    public IReadOnlyList<(string HostPath, string ContainerPath)> Volumes { get; init; } = [];

    public string Network { get; init; } = "none";

    /// <summary>Overrides the image's ENTRYPOINT when set ("" clears it).</summary>
    public string? Entrypoint { get; init; }

    /// <summary>Arguments after the image (the CMD); empty keeps the image's.</summary>
    public IReadOnlyList<string> Command { get; init; } = [];

    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);
}
