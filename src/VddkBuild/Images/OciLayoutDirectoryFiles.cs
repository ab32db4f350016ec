namespace VddkBuild.Images;

/// <summary>The files of an OCI layout in a folder (<c>oci:DIR</c>).</summary>
internal sealed class OciLayoutDirectoryFiles : IOciLayoutFiles
{
    private readonly string _root;

    public OciLayoutDirectoryFiles(string root) => _root = root;

    public ValueTask<Stream?> TryOpenAsync(string relativePath, CancellationToken cancellationToken)
    {
        var path = Path.Combine(_root, relativePath.Replace('/', Path.DirectorySeparatorChar));
        try
        {
            Stream stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return ValueTask.FromResult<Stream?>(stream);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return ValueTask.FromResult<Stream?>(null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.BaseImageNotFound,
                $"Cannot read '{path}' of the OCI layout: {VddkException.Reason(ex)}. Check the path and its permissions.", path, ex);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
