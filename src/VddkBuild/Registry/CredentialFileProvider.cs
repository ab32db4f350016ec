using System.Runtime.CompilerServices;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Credentials from the files users already have, first match wins: <c>REGISTRY_AUTH_FILE</c>, Docker's
/// <c>$DOCKER_CONFIG/config.json</c> (default <c>~/.docker/config.json</c>), podman's
/// <c>$XDG_RUNTIME_DIR/containers/auth.json</c>, then <c>~/.config/containers/auth.json</c>. In each file:
/// <c>credHelpers</c> for the registry, then an <c>auths</c> entry, then <c>credsStore</c>.
/// When an explicit user name is given, only entries for that user are used.
/// </summary>
public sealed class CredentialFileProvider(IReadOnlyList<string> paths, string? explicitUserName = null) : ICredentialProvider
{
    public IReadOnlyList<string> Paths { get; } = paths;

    public static IReadOnlyList<string> DefaultPaths(Func<string, string?> getEnvironmentVariable)
    {
        var home = getEnvironmentVariable("HOME");
        if (string.IsNullOrEmpty(home))
        {
            home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        }
        var paths = new List<string>();
        var authFile = getEnvironmentVariable("REGISTRY_AUTH_FILE");
        if (!string.IsNullOrEmpty(authFile))
        {
            paths.Add(authFile);
        }
        var dockerConfig = getEnvironmentVariable("DOCKER_CONFIG");
        paths.Add(!string.IsNullOrEmpty(dockerConfig)
            ? Path.Combine(dockerConfig, "config.json")
            : Path.Combine(home, ".docker", "config.json"));
        var runtimeDir = getEnvironmentVariable("XDG_RUNTIME_DIR");
        if (!string.IsNullOrEmpty(runtimeDir))
        {
            paths.Add(Path.Combine(runtimeDir, "containers", "auth.json"));
        }
        var configHome = getEnvironmentVariable("XDG_CONFIG_HOME");
        paths.Add(Path.Combine(string.IsNullOrEmpty(configHome) ? Path.Combine(home, ".config") : configHome, "containers", "auth.json"));
        return paths;
    }

    public ValueTask<RegistryCredential?> GetCredentialAsync(string registry, RegistryPurpose purpose, CancellationToken cancellationToken) =>
        GetCredentialAsync(registry, repository: null, purpose, cancellationToken);

    /// <summary>The first file with credentials for <paramref name="repository"/> (its namespaces' or the registry's) answers.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<RegistryCredential?> GetCredentialAsync(string registry, string? repository, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        foreach (var path in Paths)
        {
            var file = DockerConfigCredentials.TryLoad(path);
            if (file is null)
            {
                continue;
            }
            var helper = file.FindHelper(registry);
            if (helper is not null)
            {
                var fromHelper = await CredentialHelperProcess.GetAsync(helper, registry, cancellationToken).ConfigureAwait(false);
                if (Accept(fromHelper) is { } accepted)
                {
                    return accepted;
                }
            }
            if (file.FindAuth(registry, repository) is { } auth)
            {
                var fromFile = Accept(new RegistryCredential(auth.User, auth.Secret, path));
                if (fromFile is not null)
                {
                    return fromFile;
                }
            }
            if (file.CredsStore is { } store)
            {
                var fromStore = await CredentialHelperProcess.GetAsync(store, registry, cancellationToken).ConfigureAwait(false);
                if (Accept(fromStore) is { } accepted)
                {
                    return accepted;
                }
            }
        }
        return null;
    }

    private RegistryCredential? Accept(RegistryCredential? credential) =>
        credential is null || string.IsNullOrEmpty(explicitUserName) || credential.UserName == explicitUserName ? credential : null;
}
