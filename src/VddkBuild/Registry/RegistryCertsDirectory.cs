using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using VddkBuild.Diagnostics;

namespace VddkBuild.Registry;

/// <summary>
/// The CA certificates podman and docker trust for one registry (containers-certs.d(5)): the <c>*.crt</c> files of
/// the folder named after the registry (<c>host[:port]</c>) in the first certificate directory that has one
/// (<see cref="RegistryTransportOptions.CertificateDirectories"/>). Client certificates (<c>*.cert</c>, <c>*.key</c>)
/// are not read. A file that holds no certificate is skipped, as podman skips it.
/// </summary>
internal static class RegistryCertsDirectory
{
    public static (X509Certificate2Collection Certificates, string? Folder) CaCertificatesFor(string authority, IReadOnlyList<string> directories, IBuildLog log)
    {
        var certificates = new X509Certificate2Collection();
        foreach (var directory in directories)
        {
            var folder = Path.Combine(directory, authority);
            if (string.IsNullOrEmpty(directory) || !Directory.Exists(folder))
            {
                continue;
            }
            foreach (var file in Directory.EnumerateFiles(folder, "*.crt").Order(StringComparer.Ordinal))
            {
                try
                {
                    certificates.ImportFromPemFile(file);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
                {
                    log.Detail($"Registry {authority}: {file} was skipped, it holds no readable PEM certificate ({ex.Message}).");
                }
            }
            return (certificates, folder);
        }
        return (certificates, null);
    }
}
