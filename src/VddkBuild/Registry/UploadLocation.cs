using VddkBuild.Oci;

namespace VddkBuild.Registry;

/// <summary>
/// The <c>Location</c> of an upload session: absolute or relative (resolved against the request that returned it),
/// reused exactly, with its query kept (registries put session state there) and <c>digest=</c> appended.
/// </summary>
public static class UploadLocation
{
    public static Uri Resolve(Uri requestUri, string location)
    {
        if (string.IsNullOrWhiteSpace(location))
        {
            throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"The registry opened an upload at {UriForMessages.Format(requestUri)} without a Location header.", UriForMessages.Format(requestUri));
        }
        return Uri.TryCreate(location, UriKind.Absolute, out var absolute) && absolute.Scheme is "http" or "https"
            ? absolute
            : new Uri(requestUri, location);
    }

    public static Uri Resolve(HttpResponseMessage response)
    {
        var request = response.RequestMessage?.RequestUri ?? throw new InvalidOperationException("response without request");
        var location = response.Headers.Location;
        return Resolve(request, location is null ? string.Empty : location.OriginalString);
    }

    public static Uri WithDigest(Uri location, Digest digest)
    {
        // String concatenation, not UriBuilder: the session's query must be sent back byte for byte.
        var text = location.AbsoluteUri;
        var separator = location.Query.Length == 0 ? "?" : "&";
        return new Uri(text + separator + "digest=" + Uri.EscapeDataString(digest.Value));
    }
}
