using VddkBuild.Oci;

namespace VddkBuild.Registry;

/// <summary>
/// The <c>Location</c> of an upload session: absolute or relative (resolved against the request that returned it),
/// reused exactly, with its query kept (registries put session state, presigned URLs a signature, there) and
/// <c>digest=</c> appended. Path and query are sent back byte for byte: <see cref="Uri"/> would otherwise rewrite
/// escapes such as <c>%7E</c>, which breaks a signature computed over them. Redirects (to storage, a CDN) are
/// followed the same way (<see cref="ResolveExactly"/>).
/// </summary>
public static class UploadLocation
{
    private static readonly UriCreationOptions Verbatim = new() { DangerousDisablePathAndQueryCanonicalization = true };

    public static Uri Resolve(Uri requestUri, string location)
    {
        if (string.IsNullOrWhiteSpace(location))
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"The registry opened an upload at {UriForMessages.Format(requestUri)} without a Location header.", UriForMessages.Format(requestUri));
        }
        var resolved = ResolveExactly(requestUri, location);
        if (resolved.Scheme is not ("http" or "https"))
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"The registry opened an upload at a {resolved.Scheme}: address, which is not HTTP.", UriForMessages.Format(requestUri));
        }
        return resolved;
    }

    /// <summary>
    /// A <c>Location</c> header's own text resolved against the request that returned it, with the header's path and
    /// query unchanged when it is absolute or rooted (the forms registries, storage and CDNs give); any scheme.
    /// </summary>
    internal static Uri ResolveExactly(Uri requestUri, string location)
    {
        // A fragment is never sent (RFC 9110 7.1); a registry that adds one still expects the rest back exactly.
        location = location.Trim();
        if (location.IndexOf('#', StringComparison.Ordinal) is >= 0 and var fragment)
        {
            location = location[..fragment];
        }
        if (location.Any(c => c <= ' ' || c >= '\u007f'))
        {
            // Not sendable as it is (spaces, non-ASCII): escaped the usual way.
            return new Uri(requestUri, location);
        }
        if (Uri.TryCreate(location, in Verbatim, out var absolute) && absolute.IsAbsoluteUri && absolute.Scheme is "http" or "https")
        {
            return absolute;
        }
        if (location.StartsWith('/') && !location.StartsWith("//", StringComparison.Ordinal)
            && Uri.TryCreate(requestUri.GetLeftPart(UriPartial.Authority) + location, in Verbatim, out var rooted))
        {
            return rooted;
        }
        return new Uri(requestUri, location);
    }

    public static Uri Resolve(HttpResponseMessage response)
    {
        var request = response.RequestMessage?.RequestUri ?? throw new InvalidOperationException("response without request");
        // The header's own text (OriginalString): the parsed Uri's other forms have rewritten escapes.
        return Resolve(request, response.Headers.Location?.OriginalString ?? string.Empty);
    }

    public static Uri WithDigest(Uri location, Digest digest)
    {
        // String concatenation, not UriBuilder: the session's query must be sent back byte for byte.
        var text = location.GetLeftPart(UriPartial.Authority) + location.PathAndQuery;
        var separator = !location.PathAndQuery.Contains('?', StringComparison.Ordinal) ? "?" : text.EndsWith('?') || text.EndsWith('&') ? string.Empty : "&";
        return new Uri(text + separator + "digest=" + Uri.EscapeDataString(digest.Value), in Verbatim);
    }
}
