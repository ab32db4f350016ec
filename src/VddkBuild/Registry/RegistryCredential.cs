namespace VddkBuild.Registry;

/// <summary>Why credentials are needed: the .NET SDK's environment variables differ for pulls and pushes.</summary>
public enum RegistryPurpose
{
    Pull,
    Push,
}

/// <summary>
/// A user name and its secret (password or token) for one registry, with where it came from (for diagnostics,
/// never the secret). <see cref="ToString"/> never prints the secret.
/// </summary>
public sealed record RegistryCredential(string UserName, string Secret, string Source)
{
    /// <summary>
    /// The user name docker's credential files and helpers give an identity token: an OAuth2 refresh token that
    /// the registry's token endpoint exchanges for access tokens (<c>identitytoken</c> in config.json).
    /// </summary>
    public const string IdentityTokenUser = "<token>";

    /// <summary>The secret is an identity (refresh) token, not a password.</summary>
    public bool IsIdentityToken => UserName == IdentityTokenUser;

    public override string ToString() => $"{UserName} (secret hidden, from {Source})";

    /// <summary>The value of an <c>Authorization: Basic</c> header.</summary>
    internal string ToBasicParameter() =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(UserName + ":" + Secret));
}

/// <summary>A source of registry credentials. Returns null when it has none for the registry.</summary>
public interface ICredentialProvider
{
    /// <param name="registry">The registry as in <see cref="ImageReference.Registry"/> (<c>host[:port]</c>, <c>docker.io</c> for Docker Hub).</param>
    ValueTask<RegistryCredential?> GetCredentialAsync(string registry, RegistryPurpose purpose, CancellationToken cancellationToken);

    /// <summary>
    /// The credential for one repository of the registry: a credential file may hold credentials for a namespace
    /// (podman's <c>auth.json</c> keys such as <c>quay.io/organization</c>), which serve that namespace only.
    /// Providers that store credentials per registry answer as for the whole registry.
    /// </summary>
    /// <param name="repository">The repository the request is for (<c>organization/name</c>), or null when none is.</param>
    ValueTask<RegistryCredential?> GetCredentialAsync(string registry, string? repository, RegistryPurpose purpose, CancellationToken cancellationToken) =>
        GetCredentialAsync(registry, purpose, cancellationToken);
}

/// <summary>
/// Credentials obtained in-process (for example a short-lived service-account token the cluster code requested),
/// handed to the registry client without passing through properties, files or the environment.
/// </summary>
public interface IStaticCredentialProvider : ICredentialProvider
{
    void Set(string registry, RegistryCredential credential);
}

/// <summary>
/// A provider whose credentials expire and can be renewed in-process (a cluster service-account token): when the
/// registry refuses a credential it gave, the registry client asks it once for a fresh one.
/// </summary>
public interface IRefreshableCredentialProvider : ICredentialProvider
{
    /// <returns>A new credential, or null when <paramref name="rejected"/> is not one of this provider's.</returns>
    ValueTask<RegistryCredential?> RefreshAsync(string registry, RegistryPurpose purpose, RegistryCredential rejected, CancellationToken cancellationToken);
}
