namespace VddkBuild.Registry;

/// <summary>
/// Writes URLs into log lines and error messages without what may be secret: the query (presigned storage URLs carry
/// signatures, token URLs may carry more) and any user information.
/// </summary>
public static class UriForMessages
{
    public static string Format(Uri uri) =>
        uri.IsAbsoluteUri ? uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped) : uri.OriginalString.Split('?')[0];
}
