using System.Runtime.CompilerServices;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Registry credentials for the cluster's registry route: user name <c>serviceaccount</c> (OpenShift ignores it) and
/// a short-lived service account token as password, renewed when it nears expiry or when the registry refuses it.
/// Only ever answers for the one registry host it was made for; the token never leaves the process.
/// </summary>
public sealed class ServiceAccountCredentialProvider(string registry, ServiceAccountTokenSource tokens, string accountDescription) : IRefreshableCredentialProvider
{
    public const string UserName = "serviceaccount";

    private string Source => $"a TokenRequest for {accountDescription}";

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<RegistryCredential?> GetCredentialAsync(string host, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        if (!IsFor(host))
        {
            return null;
        }
        var token = await tokens.GetAsync(refresh: false, cancellationToken).ConfigureAwait(false);
        return new RegistryCredential(UserName, token.Value, Source);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public async ValueTask<RegistryCredential?> RefreshAsync(string host, RegistryPurpose purpose, RegistryCredential rejected, CancellationToken cancellationToken)
    {
        if (!IsFor(host) || rejected.Source != Source)
        {
            return null;
        }
        var token = await tokens.GetAsync(refresh: true, cancellationToken).ConfigureAwait(false);
        return new RegistryCredential(UserName, token.Value, Source);
    }

    private bool IsFor(string host) => string.Equals(host, registry, StringComparison.OrdinalIgnoreCase);
}
