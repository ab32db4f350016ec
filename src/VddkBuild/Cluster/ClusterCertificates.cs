using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace VddkBuild.Cluster;

/// <summary>PEM bundles of certificates as the cluster stores them (tls.crt, ca-bundle.crt).</summary>
public static class ClusterCertificates
{
    /// <summary>Parses every CERTIFICATE block; an empty collection when there is none or the PEM is malformed.</summary>
    public static X509Certificate2Collection Parse(string? pem)
    {
        var collection = new X509Certificate2Collection();
        if (string.IsNullOrWhiteSpace(pem))
        {
            return collection;
        }
        try
        {
            collection.ImportFromPem(pem);
        }
        catch (CryptographicException)
        {
            return new X509Certificate2Collection();
        }
        return collection;
    }

    /// <summary>One normalized PEM bundle: each certificate once, in first-seen order, so equal inputs give equal text.</summary>
    public static string ToPem(IEnumerable<X509Certificate2> certificates)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var builder = new StringBuilder();
        foreach (var certificate in certificates)
        {
            if (seen.Add(certificate.Thumbprint))
            {
                builder.Append(certificate.ExportCertificatePem()).Append('\n');
            }
        }
        return builder.ToString();
    }

    public static bool IsSelfSigned(X509Certificate2 certificate) => certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);
}
