using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>A base image in an OCI image layout folder: <c>oci:DIR[:tag]</c>.</summary>
public sealed class OciLayoutSource : IImageSource
{
    private readonly OciLayoutResolver _resolver;
    private readonly string? _tag;

    public OciLayoutSource(string directory, string? tag = null, string? displayName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        DirectoryPath = System.IO.Path.GetFullPath(directory);
        _tag = tag;
        DisplayName = displayName ?? ImageSourceReference.OciPrefix + directory + (tag is null ? "" : ":" + tag);
        _resolver = new OciLayoutResolver(new OciLayoutDirectoryFiles(DirectoryPath), DisplayName);
    }

    public string DirectoryPath { get; }

    public string DisplayName { get; }

    public Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(DirectoryPath))
        {
            throw new VddkException(ErrorCodes.BaseImageNotFound,
                $"OCI layout folder '{DirectoryPath}' does not exist. Check the path of {DisplayName}.", DirectoryPath);
        }
        return _resolver.ResolveAsync(_tag, platform, cancellationToken);
    }

    public Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        _resolver.OpenBlobAsync(descriptor, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
