using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace VddkBuild.Registry;

/// <summary>Loads the extra CA certificates of <see cref="RegistryTransportOptions.CaBundlePath"/>.</summary>
public static class CaBundle
{
    public static X509Certificate2Collection Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new VddkException(ErrorCodes.CaBundleInvalid,
                $"The registry CA bundle '{path}' does not exist. Set VddkRegistryCaBundle to a PEM file of CA certificates.", path);
        }
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.CaBundleInvalid, $"The registry CA bundle '{path}' cannot be read: {ex.Message}", path, ex);
        }
        if (!text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
        {
            throw new VddkException(ErrorCodes.CaBundleInvalid,
                $"The registry CA bundle '{path}' holds no PEM certificate ('-----BEGIN CERTIFICATE-----'). Give a PEM file (for example the cluster's ingress CA, ca-bundle.crt), not DER or a private key.",
                path);
        }
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPem(text);
        }
        catch (CryptographicException ex)
        {
            throw new VddkException(ErrorCodes.CaBundleInvalid, $"The registry CA bundle '{path}' contains a certificate that cannot be parsed: {ex.Message}", path, ex);
        }
        if (certificates.Count == 0)
        {
            throw new VddkException(ErrorCodes.CaBundleInvalid, $"The registry CA bundle '{path}' contains no usable certificate.", path);
        }
        return certificates;
    }
}
