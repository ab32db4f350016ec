using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// A base image in an OCI archive (a tar of an OCI layout): <c>oci-archive:FILE[:tag]</c>. Read in place: the
/// archive is scanned once for member offsets, blobs are streamed from their offsets, nothing is extracted.
/// </summary>
public sealed class OciArchiveSource : IImageSource
{
    private readonly OciArchiveFiles _files;
    private readonly OciLayoutResolver _resolver;
    private readonly string? _tag;

    public OciArchiveSource(string archivePath, string? tag = null, string? displayName = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        ArchivePath = System.IO.Path.GetFullPath(archivePath);
        _tag = tag;
        DisplayName = displayName ?? ImageSourceReference.OciArchivePrefix + archivePath + (tag is null ? "" : ":" + tag);
        _files = new OciArchiveFiles(ArchivePath);
        _resolver = new OciLayoutResolver(_files, DisplayName);
    }

    public string ArchivePath { get; }

    public string DisplayName { get; }

    public Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken) =>
        _resolver.ResolveAsync(_tag, platform, cancellationToken);

    public Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        _resolver.OpenBlobAsync(descriptor, cancellationToken);

    public ValueTask DisposeAsync() => _files.DisposeAsync();
}
