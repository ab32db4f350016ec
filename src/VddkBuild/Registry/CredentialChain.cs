using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>Options that choose where credentials come from. None of them is a secret.</summary>
public sealed record CredentialOptions
{
    /// <summary>A user name given as a build option; its secret still comes from the environment or a credential file.</summary>
    public string? UserName { get; init; }

    /// <summary>Credentials obtained in-process (cluster tokens); consulted first.</summary>
    public ICredentialProvider? InProcess { get; init; }

    /// <summary>Environment lookup (tests replace it).</summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>Credential files to read instead of the default locations (tests).</summary>
    public IReadOnlyList<string>? CredentialFiles { get; init; }

    /// <summary>The registry pushed to (<c>host[:port]</c>), when known: the environment's push secrets go there only.</summary>
    public string? PushRegistry { get; init; }

    /// <summary>
    /// True: <c>VDDK_REGISTRY_PASSWORD</c> and the push variables serve <see cref="PushRegistry"/> only, and no
    /// registry at all when it is null (a build that pushes nowhere). False (a library caller that names no push
    /// registry): they serve whichever registry is asked for. The MSBuild tasks always scope them.
    /// </summary>
    public bool ScopeEnvironmentSecrets { get; init; }
}

/// <summary>
/// Asks providers in order (in-process, environment, credential files) and remembers the answer per registry and
/// purpose for the run. Logs where credentials came from, never what they are.
/// </summary>
public sealed class CredentialChain : ICredentialProvider
{
    private readonly IReadOnlyList<ICredentialProvider> _providers;
    private readonly IBuildLog _log;
    private readonly ConcurrentDictionary<(string Registry, string Repository, RegistryPurpose Purpose), Task<RegistryCredential?>> _cache = new();

    public CredentialChain(IReadOnlyList<ICredentialProvider> providers, IBuildLog log)
    {
        _providers = providers;
        _log = log;
    }

    public static CredentialChain Create(CredentialOptions options, IBuildLog log)
    {
        var providers = new List<ICredentialProvider>();
        if (options.InProcess is not null)
        {
            providers.Add(options.InProcess);
        }
        providers.Add(new EnvironmentCredentialProvider(options.GetEnvironmentVariable, options.UserName, options.PushRegistry, options.ScopeEnvironmentSecrets));
        providers.Add(new CredentialFileProvider(options.CredentialFiles ?? CredentialFileProvider.DefaultPaths(options.GetEnvironmentVariable), options.UserName));
        return new CredentialChain(providers, log);
    }

    /// <summary>
    /// The same chain without the environment, whose variables name no host: for hosts a registry sends requests on to
    /// (upload sessions, redirects), which get only what is stored for them by name.
    /// </summary>
    public CredentialChain ForHostsByName() => new([.. _providers.Where(p => p is not EnvironmentCredentialProvider)], _log);

    public ValueTask<RegistryCredential?> GetCredentialAsync(string registry, RegistryPurpose purpose, CancellationToken cancellationToken) =>
        GetCredentialAsync(registry, repository: null, purpose, cancellationToken);

    /// <summary>Remembered per repository: a credential file may name credentials for a namespace of the registry.</summary>
    public ValueTask<RegistryCredential?> GetCredentialAsync(string registry, string? repository, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        var key = (DockerConfigCredentials.NormalizeKey(registry), repository ?? string.Empty, purpose);
        var task = _cache.GetOrAdd(key, k => LookUpAsync(k.Registry, repository, k.Purpose, cancellationToken));
        if (task.IsCanceled || task.IsFaulted)
        {
            // Do not remember failures: the next request may succeed (e.g. an unlocked keychain).
            _cache.TryRemove(new KeyValuePair<(string, string, RegistryPurpose), Task<RegistryCredential?>>(key, task));
        }
        return new ValueTask<RegistryCredential?>(task);
    }

    /// <summary>
    /// Asks the refreshable providers for a replacement of a credential the registry refused; the answer replaces
    /// the remembered one. Null when no provider can renew it (then the refusal stands).
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<RegistryCredential?> RefreshAsync(string registry, RegistryPurpose purpose, RegistryCredential rejected, CancellationToken cancellationToken)
    {
        var host = DockerConfigCredentials.NormalizeKey(registry);
        foreach (var provider in _providers.OfType<IRefreshableCredentialProvider>())
        {
            var renewed = await provider.RefreshAsync(registry, purpose, rejected, cancellationToken).ConfigureAwait(false);
            if (renewed is not null)
            {
                // Every repository that was given the refused credential gets the renewed one.
                foreach (var (key, remembered) in _cache)
                {
                    if (key.Registry == host && key.Purpose == purpose && remembered.IsCompletedSuccessfully && remembered.Result == rejected)
                    {
                        _cache[key] = Task.FromResult<RegistryCredential?>(renewed);
                    }
                }
                _cache.TryAdd((host, string.Empty, purpose), Task.FromResult<RegistryCredential?>(renewed));
                _log.Detail($"Registry {registry}: the credentials of user '{rejected.UserName}' were refused; renewed them from {renewed.Source}.");
                return renewed;
            }
        }
        return null;
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<RegistryCredential?> LookUpAsync(string registry, string? repository, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        foreach (var provider in _providers)
        {
            var credential = await provider.GetCredentialAsync(registry, repository, purpose, cancellationToken).ConfigureAwait(false);
            if (credential is not null)
            {
                _log.Detail($"Registry {registry}{(repository is null ? string.Empty : $" ({repository})")}: {purpose.ToString().ToLowerInvariant()} credentials for user '{credential.UserName}' from {credential.Source}.");
                return credential;
            }
        }
        _log.Detail($"Registry {registry}: no {purpose.ToString().ToLowerInvariant()} credentials found; trying anonymous access.");
        return null;
    }
}
