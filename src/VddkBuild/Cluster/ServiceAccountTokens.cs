using System.Runtime.CompilerServices;
using k8s;
using k8s.Models;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>A short-lived service account token. Kept in memory only; <see cref="ToString"/> never shows it.</summary>
public sealed class ServiceAccountToken(string ns, string serviceAccount, string value, DateTimeOffset expiresAt)
{
    public string Namespace { get; } = ns;

    public string ServiceAccount { get; } = serviceAccount;

    /// <summary>The bearer token: the password of a registry login (the user name is ignored).</summary>
    public string Value { get; } = value;

    public DateTimeOffset ExpiresAt { get; } = expiresAt;

    public override string ToString() => $"token of system:serviceaccount:{Namespace}:{ServiceAccount} (expires {ExpiresAt:u})";
}

/// <summary>TokenRequest for a service account (what <c>oc create token</c> does), 10 minutes by default (the minimum).</summary>
public static class ServiceAccountTokens
{
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromMinutes(10);

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<ServiceAccountToken> RequestAsync(ClusterSession session, string ns, string serviceAccount, TimeSpan? lifetime, CancellationToken cancellationToken)
    {
        var target = new ClusterObjectRef(ClusterResource.ServiceAccounts, ns, serviceAccount);
        var seconds = (long)Math.Max(600, (lifetime ?? DefaultLifetime).TotalSeconds);
        Authenticationv1TokenRequest response;
        try
        {
            response = await ClusterErrors.CallAsync(session, "create token for", target, ct => session.Api.CoreV1.CreateNamespacedServiceAccountTokenAsync(
                new Authenticationv1TokenRequest { Spec = new V1TokenRequestSpec { ExpirationSeconds = seconds } }, serviceAccount, ns, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.ClusterObjectNotFound)
        {
            // The API server says only that the account is not found; a namespace that is not there at all (Forklift
            // installed elsewhere than openshift-mtv, a typo) needs another fix. A namespace read refused says nothing.
            var namespaceRef = new ClusterObjectRef(ClusterResource.Namespaces, null, ns);
            var namespaceRead = await ClusterErrors.GetOrRefusedAsync(session, namespaceRef,
                ct => session.Api.CoreV1.ReadNamespaceAsync(ns, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            if (namespaceRead is { Value: null, Refused: null })
            {
                throw new VddkException(ErrorCodes.ServiceAccountTokenFailed,
                    $"No token can be requested for {target}: the namespace \"{ns}\" itself does not exist. The namespace of VddkRepository ('{ns}/...') holds " +
                    "the image stream, the pushing service account and the pull RoleBinding: set VddkRepository to a project that exists, usually the one " +
                    "the Migration Toolkit for Virtualization runs in (openshift-mtv; konveyor-forklift for upstream Forklift), e.g. VddkRepository=konveyor-forklift/vddk.",
                    target.ToString(), ex);
            }
            throw new VddkException(ErrorCodes.ServiceAccountTokenFailed,
                $"No token can be requested: {target} does not exist. The 'builder' service account exists in every namespace when the Build capability is enabled; " +
                "create the service account or set VddkServiceAccount to one that exists and may push (system:image-builder).", target.ToString(), ex);
        }
        var token = response.Status?.Token;
        if (string.IsNullOrEmpty(token))
        {
            throw new VddkException(ErrorCodes.ServiceAccountTokenFailed, $"The API server returned no token for {target}.", target.ToString());
        }
        var expires = response.Status!.ExpirationTimestamp is DateTime at
            ? new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc))
            : session.Clock.GetUtcNow().AddSeconds(seconds);
        var result = new ServiceAccountToken(ns, serviceAccount, token, expires);
        session.Log.Detail($"Requested a {seconds / 60} minute {result}.");
        return result;
    }
}

/// <summary>
/// Hands out a valid token for one service account, requesting a new one when the current one is about to expire or
/// the registry refused it (a push can outlive a 10-minute token).
/// </summary>
public sealed class ServiceAccountTokenSource(ClusterSession session, string ns, string serviceAccount, TimeSpan? lifetime = null)
{
    /// <summary>A token closer than this to its expiry is replaced before use.</summary>
    public static readonly TimeSpan RefreshMargin = TimeSpan.FromMinutes(1);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private ServiceAccountToken? _current;

    /// <param name="refresh">True after the registry answered 401 with the current token.</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<ServiceAccountToken> GetAsync(bool refresh, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (refresh || _current is null || _current.ExpiresAt - session.Clock.GetUtcNow() < RefreshMargin)
            {
                _current = await ServiceAccountTokens.RequestAsync(session, ns, serviceAccount, lifetime, cancellationToken).ConfigureAwait(false);
            }
            return _current;
        }
        finally
        {
            _gate.Release();
        }
    }
}
