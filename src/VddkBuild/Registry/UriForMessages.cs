namespace VddkBuild.Registry;

/// <summary>
/// Writes URLs into log lines and error messages without what may be secret: the query (presigned storage URLs carry
/// signatures, token URLs may carry more) and any user information.
/// </summary>
public static class UriForMessages
{
    // Scheme, Authority (no user information) and AbsolutePath rather than GetComponents: upload locations are kept
    // verbatim (UploadLocation), and such a Uri refuses GetComponents for its path.
    public static string Format(Uri uri) =>
        uri.IsAbsoluteUri ? $"{uri.Scheme}://{uri.Authority}{uri.AbsolutePath}" : uri.OriginalString.Split('?')[0];
}
