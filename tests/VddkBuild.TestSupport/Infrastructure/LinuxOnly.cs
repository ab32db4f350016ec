namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// The real infrastructure (podman, Ceph, Debian packages) exists on Linux only. Call sites write
/// <c>if (!OperatingSystem.IsLinux()) throw LinuxOnly.NotSupported();</c> inline, so the platform analyzer sees the guard.
/// </summary>
internal static class LinuxOnly
{
    public static PlatformNotSupportedException NotSupported() =>
        new("The test infrastructure (podman, skopeo, docker-registry, Ceph) runs on Linux only.");
}
