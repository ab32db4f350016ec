using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace VddkBuild.Registry;

/// <summary>
/// Certificate validation for registry connections: the system trust store, plus the CA bundle when one is given
/// (a chain that fails against the system store is built again with the bundle as trust anchors). Host name
/// mismatches are never forgiven. Accept-anything exists only for hosts the user marked insecure.
/// </summary>
public sealed class RegistryTlsTrust
{
    private readonly X509Certificate2Collection? _bundle;

    public RegistryTlsTrust(X509Certificate2Collection? bundle) => _bundle = bundle;

    public static RemoteCertificateValidationCallback AcceptAny { get; } = (_, _, _, _) => true;

    /// <summary>This trust plus <paramref name="more"/> CA certificates (those podman trusts for one registry).</summary>
    public RegistryTlsTrust With(X509Certificate2Collection more)
    {
        if (more.Count == 0)
        {
            return this;
        }
        var combined = new X509Certificate2Collection();
        if (_bundle is not null)
        {
            combined.AddRange(_bundle);
        }
        combined.AddRange(more);
        return new RegistryTlsTrust(combined);
    }

    public bool Validate(X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }
        if (_bundle is null || certificate is null || errors != SslPolicyErrors.RemoteCertificateChainErrors)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_bundle);
        chain.ChainPolicy.ExtraStore.AddRange(_bundle);
        // Private CAs rarely publish revocation lists reachable from build machines.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }
}
