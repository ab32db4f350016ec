using System.Text;

namespace VddkBuild.TestSupport.Registry;

/// <summary>
/// The token an OpenShift-style registry front accepts from an Authorization header: a Bearer token as is, or the
/// password of Basic credentials (OpenShift ignores the user name).
/// </summary>
public static class PresentedToken
{
    public static string? From(string authorization) =>
        authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization[7..].Trim()
        : authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) ? BasicPassword(authorization)
        : null;

    private static string? BasicPassword(string authorization)
    {
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim()));
            var colon = decoded.IndexOf(':');
            return colon < 0 ? null : decoded[(colon + 1)..];
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
