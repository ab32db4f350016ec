namespace VddkBuild.Images;

/// <summary>Read access to the files of an OCI image layout, wherever they are kept (a folder or a tar).</summary>
internal interface IOciLayoutFiles : IAsyncDisposable
{
    /// <summary>Opens a file by its layout-relative path ("index.json", "blobs/sha256/..."), or null when absent.</summary>
    ValueTask<Stream?> TryOpenAsync(string relativePath, CancellationToken cancellationToken);
}
