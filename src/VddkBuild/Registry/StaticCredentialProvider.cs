using System.Collections.Concurrent;

namespace VddkBuild.Registry;

/// <summary>In-memory credentials per registry, for tokens obtained in-process; valid for pull and push.</summary>
public sealed class StaticCredentialProvider : IStaticCredentialProvider
{
    private readonly ConcurrentDictionary<string, RegistryCredential> _credentials = new(StringComparer.OrdinalIgnoreCase);

    public void Set(string registry, RegistryCredential credential) => _credentials[registry] = credential;

    public ValueTask<RegistryCredential?> GetCredentialAsync(string registry, RegistryPurpose purpose, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_credentials.TryGetValue(registry, out var credential) ? credential : null);
}
