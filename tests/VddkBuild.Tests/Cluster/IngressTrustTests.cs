using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using VddkBuild.Cluster;

namespace VddkBuild.Tests.Cluster;

/// <summary>
/// A custom default ingress certificate from an enterprise CA: root -> intermediate -> leaf, with tls.crt (the bundle)
/// holding the leaf and the intermediate only. The root stands for one in the system trust store.
/// </summary>
public sealed class IngressTrustTests : IDisposable
{
    private readonly X509Certificate2 _root;
    private readonly X509Certificate2 _intermediate;
    private readonly X509Certificate2 _leaf;

    public IngressTrustTests()
    {
        using var rootKey = RSA.Create(2048);
        var rootRequest = new CertificateRequest("CN=Enterprise Root CA", rootKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        _root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));

        using var intermediateKey = RSA.Create(2048);
        var intermediateRequest = new CertificateRequest("CN=Enterprise Issuing CA", intermediateKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var intermediatePublic = intermediateRequest.Create(_root, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddMonths(6), [1, 2, 3]);
        _intermediate = intermediatePublic.CopyWithPrivateKey(intermediateKey);

        using var leafKey = RSA.Create(2048);
        var leafRequest = new CertificateRequest("CN=*.apps.example.test", leafKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        leafRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        _leaf = leafRequest.Create(_intermediate, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddMonths(3), [4, 5, 6]);
    }

    private X509Certificate2Collection TlsCrtWithoutRoot => [_leaf, _intermediate];

    [Fact]
    public void A_certificate_whose_root_is_a_system_root_is_trusted_although_the_bundle_omits_the_root()
    {
        Assert.True(IngressTrust.Validate(_leaf, SslPolicyErrors.RemoteCertificateChainErrors, TlsCrtWithoutRoot, systemRoots: [_root]));
        Assert.True(IngressTrust.AnyChainsToSystem(TlsCrtWithoutRoot.Cast<X509Certificate2>(), systemRoots: [_root]));
    }

    [Fact]
    public void Without_the_root_in_the_system_store_or_the_bundle_it_is_refused()
    {
        using var otherKey = RSA.Create(2048);
        using var other = new CertificateRequest("CN=Other Root", otherKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));

        Assert.False(IngressTrust.Validate(_leaf, SslPolicyErrors.RemoteCertificateChainErrors, TlsCrtWithoutRoot, systemRoots: [other]));
        Assert.False(IngressTrust.AnyChainsToSystem(TlsCrtWithoutRoot.Cast<X509Certificate2>(), systemRoots: [other]));
    }

    [Fact]
    public void A_root_in_the_bundle_anchors_the_chain_and_a_name_mismatch_is_never_trusted()
    {
        X509Certificate2Collection withRoot = [_leaf, _intermediate, _root];

        Assert.True(IngressTrust.Validate(_leaf, SslPolicyErrors.RemoteCertificateChainErrors, withRoot, systemRoots: []));
        Assert.False(IngressTrust.Validate(_leaf, SslPolicyErrors.RemoteCertificateNameMismatch, withRoot, systemRoots: [_root]));
    }

    public void Dispose()
    {
        _leaf.Dispose();
        _intermediate.Dispose();
        _root.Dispose();
    }
}
