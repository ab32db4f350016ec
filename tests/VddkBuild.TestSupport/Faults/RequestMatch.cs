using Microsoft.AspNetCore.Http;

namespace VddkBuild.TestSupport.Faults;

/// <summary>Which requests of the distribution API a fault applies to.</summary>
public static class RequestMatch
{
    private static string PathOf(HttpRequest request) => request.Path.Value ?? "/";

    /// <summary>A request that carries blob bytes: a monolithic PUT or a PATCH chunk of an upload session.</summary>
    public static bool BlobData(HttpRequest request) =>
        (HttpMethods.IsPut(request.Method) || HttpMethods.IsPatch(request.Method))
        && PathOf(request).Contains("/blobs/uploads/", StringComparison.Ordinal) && request.ContentLength > 0;

    public static bool UploadStart(HttpRequest request) =>
        HttpMethods.IsPost(request.Method) && PathOf(request).Contains("/blobs/uploads", StringComparison.Ordinal);

    public static bool ManifestPut(HttpRequest request) =>
        HttpMethods.IsPut(request.Method) && PathOf(request).Contains("/manifests/", StringComparison.Ordinal);

    public static bool ManifestGet(HttpRequest request) =>
        HttpMethods.IsGet(request.Method) && PathOf(request).Contains("/manifests/", StringComparison.Ordinal);

    public static bool BlobGet(HttpRequest request) =>
        HttpMethods.IsGet(request.Method) && PathOf(request).Contains("/blobs/sha256:", StringComparison.Ordinal);

    public static bool BlobHead(HttpRequest request) =>
        HttpMethods.IsHead(request.Method) && PathOf(request).Contains("/blobs/sha256:", StringComparison.Ordinal);

    /// <summary>Any request of the registry API except the <c>/v2/</c> ping.</summary>
    public static bool Api(HttpRequest request) => PathOf(request).TrimEnd('/') != "/v2";

    public static bool Any(HttpRequest request) => true;
}
