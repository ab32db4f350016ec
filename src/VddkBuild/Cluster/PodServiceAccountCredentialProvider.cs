using System.Text;
using System.Text.Json;
using VddkBuild.Registry;

namespace VddkBuild.Cluster;

/// <summary>
/// Registry credentials for the cluster's registry from the pod's own service account: its token file, read for
/// every credential asked for (the kubelet rotates it, bound tokens live about an hour), with user name
/// <c>serviceaccount</c> (OpenShift ignores it). Only ever answers for the one registry host it was made for; the
/// token never leaves the process.
/// </summary>
public sealed class PodServiceAccountCredentialProvider(string registry, string tokenPath) : IRefreshableCredentialProvider
{
    private string Source => $"the pod's service account token ({tokenPath})";

    public ValueTask<RegistryCredential?> GetCredentialAsync(string host, RegistryPurpose purpose, CancellationToken cancellationToken) =>
        ValueTask.FromResult(IsFor(host) ? Read() : null);

    public ValueTask<RegistryCredential?> RefreshAsync(string host, RegistryPurpose purpose, RegistryCredential rejected, CancellationToken cancellationToken) =>
        ValueTask.FromResult(IsFor(host) && rejected.Source == Source ? Read() : null);

    /// <summary>
    /// The account a service account token belongs to (<c>system:serviceaccount:NAMESPACE:NAME</c>, its JWT's
    /// <c>sub</c>), read without verifying it (only to name the account in messages); null when it is not such a token.
    /// </summary>
    public static (string Namespace, string Name)? AccountOf(string token)
    {
        var parts = token.Trim().Split('.');
        if (parts.Length != 3)
        {
            return null;
        }
        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
            using var document = JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(payload)));
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("sub", out var sub) && sub.ValueKind == JsonValueKind.String
                && sub.GetString()!.Split(':') is ["system", "serviceaccount", { Length: > 0 } ns, { Length: > 0 } name])
            {
                return (ns, name);
            }
        }
        catch (Exception ex) when (ex is FormatException or JsonException or ArgumentException)
        {
        }
        return null;
    }

    private RegistryCredential Read()
    {
        string token;
        try
        {
            token = File.ReadAllText(tokenPath).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.ClusterConfigInvalid,
                $"The pod's service account token '{tokenPath}' cannot be read ({ex.Message}); it is the credential for the cluster's registry. Check the pod's service account mount (automountServiceAccountToken).", tokenPath, ex);
        }
        return new RegistryCredential(ServiceAccountCredentialProvider.UserName, token, Source);
    }

    private bool IsFor(string host) => string.Equals(host, registry, StringComparison.OrdinalIgnoreCase);
}
