using System.Runtime.CompilerServices;
using System.Text.Json;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Images;

/// <summary>
/// Writes a built image into an OCI image layout folder (<c>oci:DIR</c>), creating it or adding to it: blobs
/// already present are kept when their bytes are what their name says (a blob corrupted in place, with its size kept,
/// is written again), index.json entries with the same names are replaced and
/// others kept. Every file is written to a temp name and renamed; index.json last, so a reader never sees an image
/// whose blobs are missing.
/// </summary>
public static class OciLayoutWriter
{
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public static async Task WriteAsync(BuiltImage image, IImageSource baseSource, string directory, IReadOnlyList<string> tags, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(baseSource);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var names = OciTagName.Validate(tags ?? []);
        var root = Path.GetFullPath(directory);
        try
        {
            Directory.CreateDirectory(root);
            foreach (var blob in ImageBlob.Of(image, baseSource))
            {
                var path = Path.Combine(root, blob.RelativePath.Replace('/', Path.DirectorySeparatorChar));
                if (await HoldsAsync(path, blob.Descriptor, ct).ConfigureAwait(false))
                {
                    continue;
                }
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await WriteAtomicallyAsync(path, file => OciArchiveWriter.CopyBlobAsync(blob, stream => stream.CopyToAsync(file, ct), ct), ct).ConfigureAwait(false);
            }
            var layoutFile = Path.Combine(root, "oci-layout");
            if (!File.Exists(layoutFile))
            {
                await WriteAtomicallyAsync(layoutFile, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<bool> (file) => { await file.WriteAsync(OciArchiveWriter.OciLayoutFile, ct).ConfigureAwait(false); return true; }, ct).ConfigureAwait(false);
            }
            var index = MergeIndex(Path.Combine(root, "index.json"), image, names);
            await WriteAtomicallyAsync(Path.Combine(root, "index.json"), [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<bool> (file) => { await file.WriteAsync(OciJson.Serialize(index), ct).ConfigureAwait(false); return true; }, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not write OCI layout '{root}': {VddkException.Reason(ex)}. Check free space and that the folder is writable.", root, ex);
        }
    }

    /// <summary>True when <paramref name="path"/> is a file holding exactly the blob: size first, then its digest.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<bool> HoldsAsync(string path, Descriptor blob, CancellationToken ct)
    {
        if (!File.Exists(path) || new FileInfo(path).Length != blob.Size)
        {
            return false;
        }
        try
        {
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await using var verifying = new DigestVerifyingStream(file, blob, path);
            await verifying.CopyToAsync(Stream.Null, ct).ConfigureAwait(false);
            return true;
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.BlobDigestMismatch)
        {
            return false;
        }
    }

    private static ImageIndex MergeIndex(string indexPath, BuiltImage image, IReadOnlyList<string> tags)
    {
        var ours = OciArchiveWriter.IndexFor(image, tags);
        if (!File.Exists(indexPath))
        {
            return ours;
        }
        ImageIndex existing;
        try
        {
            existing = JsonSerializer.Deserialize<ImageIndex>(File.ReadAllBytes(indexPath), OciJson.Options)
                ?? throw new JsonException("index.json is null");
        }
        catch (Exception ex) when (ex is JsonException or VddkException)
        {
            throw new VddkException(ErrorCodes.ImageLayoutInvalid,
                $"'{indexPath}' exists but is not a valid index ({ex.Message}). Write to an empty folder or repair the layout.", indexPath, ex);
        }
        // Keep other images; an entry carrying one of our names (or our unnamed digest) is replaced.
        var kept = (existing.Manifests ?? []).Where(d =>
        {
            var name = d.Annotations is { } a && a.TryGetValue(OciLayoutResolver.RefNameAnnotation, out var n) ? n : null;
            return name is null ? !(tags.Count == 0 && d.Digest == image.Digest) : !tags.Contains(name, StringComparer.Ordinal);
        });
        return ours with { Manifests = [.. kept, .. ours.Manifests], Annotations = existing.Annotations };
    }

    /// <param name="write">Returns false when there turned out to be nothing to write (an absent foreign layer).</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private static async Task WriteAtomicallyAsync(string path, Func<Stream, Task<bool>> write, CancellationToken ct)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            bool written;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                written = await write(file).ConfigureAwait(false);
                await file.FlushAsync(ct).ConfigureAwait(false);
            }
            if (written)
            {
                File.Move(temp, path, overwrite: true);
            }
            else
            {
                File.Delete(temp);
            }
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The temp name marks it as such; nothing else refers to it.
            }
            throw;
        }
    }
}
