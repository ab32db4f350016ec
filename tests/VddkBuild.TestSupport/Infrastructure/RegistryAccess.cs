namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>How podman or skopeo reaches a registry: TLS verification, a folder of CA certificates (*.crt), credentials.</summary>
public sealed record RegistryAccess(bool TlsVerify = true, string? CertDir = null, RegistryCredentials? Credentials = null)
{
    public static RegistryAccess Default { get; } = new();

    /// <summary>Plain HTTP or unverified TLS, no credentials: a loopback test registry.</summary>
    public static RegistryAccess Insecure { get; } = new(TlsVerify: false);

    /// <summary>The registry host[:port] of a reference such as <c>docker://127.0.0.1:5000/repo:tag</c> or <c>127.0.0.1:5000/repo@sha256:...</c>.</summary>
    public static string RegistryOf(string reference)
    {
        var withoutTransport = reference.StartsWith("docker://", StringComparison.Ordinal) ? reference["docker://".Length..] : reference;
        var slash = withoutTransport.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? withoutTransport : withoutTransport[..slash];
    }
}
