using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// A throwaway certificate authority and a server certificate it signed for 127.0.0.1/localhost, so loopback servers
/// speak real TLS that a client verifies against a CA it was given (as with a cluster's kubeconfig), never with
/// verification turned off.
/// </summary>
public sealed class LoopbackCertificates : IDisposable
{
    private LoopbackCertificates(X509Certificate2 authority, X509Certificate2 server)
    {
        Authority = authority;
        Server = server;
    }

    /// <summary>The CA (with its private key, to sign more certificates for other loopback servers).</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>The server certificate with its private key.</summary>
    public X509Certificate2 Server { get; }

    public string AuthorityPem => Authority.ExportCertificatePem();

    /// <summary>The server certificate followed by the CA, as an OpenShift router's tls.crt holds them.</summary>
    public string ServerChainPem => Server.ExportCertificatePem() + "\n" + Authority.ExportCertificatePem() + "\n";

    public static LoopbackCertificates Create(string commonName = "VddkBuild loopback CA", params string[] extraDnsNames)
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest($"CN={commonName}", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        var authority = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(7));
        return new LoopbackCertificates(authority, Issue(authority, "127.0.0.1", extraDnsNames));
    }

    /// <summary>Signs a server certificate for 127.0.0.1, ::1, localhost and <paramref name="dnsNames"/> (with private key).</summary>
    public X509Certificate2 IssueServerCertificate(string commonName, params string[] dnsNames) => Issue(Authority, commonName, dnsNames);

    /// <summary>
    /// A client certificate for a kubeconfig's client-certificate-data/client-key-data, as the installer writes the
    /// admin kubeconfig: CN is the user, O the groups, an RSA key in PKCS#1 PEM ("RSA PRIVATE KEY").
    /// </summary>
    public (string CertificatePem, string KeyPem) IssueClientCertificate(string user, params string[] groups)
    {
        var now = DateTimeOffset.UtcNow;
        using var key = RSA.Create(2048);
        var subject = string.Concat($"CN={user}", string.Concat(groups.Select(g => $", O={g}")));
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Authority, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        // An RSA leaf under the EC authority: signed with the authority's EC key.
        using var authorityKey = Authority.GetECDsaPrivateKey()!;
        using var signed = request.Create(Authority.SubjectName, X509SignatureGenerator.CreateForECDsa(authorityKey),
            new DateTimeOffset(Authority.NotBefore.ToUniversalTime()), now.AddDays(1), serial);
        return (signed.ExportCertificatePem(), PemEncoding.WriteString("RSA PRIVATE KEY", key.ExportRSAPrivateKey()));
    }

    /// <summary>The user (CN) of a client certificate this authority signed for client authentication; null for any other certificate.</summary>
    public string? ClientUser(X509Certificate2? certificate)
    {
        if (certificate is null)
        {
            return null;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        return chain.Build(certificate) ? certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false) : null;
    }

    private static X509Certificate2 Issue(X509Certificate2 authority, string commonName, string[] dnsNames)
    {
        var now = DateTimeOffset.UtcNow;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        foreach (var name in dnsNames)
        {
            san.AddDnsName(name);
        }
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        // Within the authority's validity (its times are truncated to seconds; a later "now" must not overshoot them).
        var notAfter = new DateTimeOffset(authority.NotAfter.ToUniversalTime());
        var notBefore = new DateTimeOffset(authority.NotBefore.ToUniversalTime());
        using var signed = request.Create(authority, notBefore, notAfter < now.AddDays(7) ? notAfter : now.AddDays(7), serial);
        using var withKey = signed.CopyWithPrivateKey(key);
        // Re-import so the key is usable by SslStream on every platform (ephemeral keys are not on Windows).
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    public void Dispose()
    {
        Authority.Dispose();
        Server.Dispose();
    }
}
