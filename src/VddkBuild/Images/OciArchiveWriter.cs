using System.Runtime.CompilerServices;
using System.Text;
using VddkBuild.Diagnostics;
using VddkBuild.IO;
using VddkBuild.Layers;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Images;

/// <summary>
/// Writes a built image as an OCI archive (<c>oci-archive:</c>, a plain tar of an OCI image layout) that skopeo,
/// podman load and crane read. The tar is deterministic (sorted members, mode 0644/0755, owner 0, mtime 0), so
/// the same image and tags give the same file. It is written to a temp name beside the target and renamed at the
/// end; a failure or cancellation leaves nothing behind.
/// </summary>
public static class OciArchiveWriter
{
    internal static readonly byte[] OciLayoutFile = Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}");

    private const int FileMode = 0x1A4; // 0644
    private const int DirMode = 0x1ED;  // 0755

    /// <param name="tags">Names for index.json (org.opencontainers.image.ref.name), one descriptor each; none gives one unnamed entry.</param>
    /// <param name="log">Where the deletion of a killed build's temporary archive is noted.</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    public static async Task WriteAsync(BuiltImage image, IImageSource baseSource, string archivePath, IReadOnlyList<string> tags, CancellationToken ct, IBuildLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(baseSource);
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        var names = OciTagName.Validate(tags ?? []);
        var target = OutputFile(Path.GetFullPath(archivePath));
        var directory = Path.GetDirectoryName(target)!;
        var temp = Path.Combine(directory, TemporaryName(Path.GetFileName(target)));
        try
        {
            Directory.CreateDirectory(directory);
            // A build killed while writing this same output (kill -9, an OOM kill) left its temporary file.
            AbandonedTemporaryFiles.Remove(directory, name => IsTemporaryName(name, Path.GetFileName(target)), $"a temporary copy of '{Path.GetFileName(target)}'", log);
            await using (var file = new FileStream(temp, System.IO.FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await WriteTarAsync(file, image, baseSource, names, ct).ConfigureAwait(false);
                await file.FlushAsync(ct).ConfigureAwait(false);
            }
            File.Move(temp, target, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not write OCI archive '{target}': {VddkException.Reason(ex)}.{DiskSpace.Shortfall(ex, directory, SizeOf(image, baseSource), "VddkImageArchive (or VddkOutputDirectory)")}"
                + (DiskSpace.IsFull(ex) ? string.Empty : " Check that the folder is writable by the user the build runs as, or set VddkImageArchive to a path in one that is."), target, ex);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>The file to replace for <paramref name="path"/> (<see cref="OutputPath.FollowSymlink"/>); a directory is refused.</summary>
    private static string OutputFile(string path)
    {
        var target = path;
        try
        {
            target = OutputPath.FollowSymlink(path);
        }
        catch (IOException ex)
        {
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not write OCI archive '{path}': it is a symbolic link that cannot be followed ({VddkException.Reason(ex)}). Point it at a file, or set VddkImageArchive to another path.", path, ex);
        }
        if (Directory.Exists(target))
        {
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not write OCI archive '{path}': it is a directory. Set VddkImageArchive to a file path (e.g. '{Path.Combine(target, "vddk.oci.tar")}'), or VddkOutputDirectory to the folder.", path);
        }
        return target;
    }

    /// <summary>The archive's size, near enough for a disk-space message: each blob in a tar member, plus the small files.</summary>
    private static long SizeOf(BuiltImage image, IImageSource baseSource) =>
        ImageBlob.Of(image, baseSource).Sum(b => 512 + ((b.Descriptor.Size + 511) / 512 * 512)) + (8 * 1024);

    /// <summary>The unique name the archive is written under before it is renamed to <paramref name="fileName"/>.</summary>
    internal static string TemporaryName(string fileName) => $".{fileName}.{Guid.NewGuid():N}.tmp";

    /// <summary>True for <see cref="TemporaryName"/>'s names for <paramref name="fileName"/>, and no other file's.</summary>
    internal static bool IsTemporaryName(string name, string fileName)
    {
        // "." + fileName + "." + 32 lowercase hex digits + ".tmp"
        const int GuidLength = 32;
        if (name.Length != fileName.Length + GuidLength + 6 || name[0] != '.'
            || !name.AsSpan(1, fileName.Length).SequenceEqual(fileName) || name[fileName.Length + 1] != '.'
            || !name.EndsWith(".tmp", StringComparison.Ordinal))
        {
            return false;
        }
        foreach (var c in name.AsSpan(fileName.Length + 2, GuidLength))
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The index.json of a layout holding <paramref name="image"/> under <paramref name="tags"/>.</summary>
    internal static ImageIndex IndexFor(BuiltImage image, IReadOnlyList<string> tags) => new()
    {
        SchemaVersion = 2,
        MediaType = MediaTypes.OciIndex,
        Manifests = tags.Count == 0
            ? [ManifestEntry(image, null)]
            : [.. tags.Select(t => ManifestEntry(image, t))],
    };

    internal static Descriptor ManifestEntry(BuiltImage image, string? tag) => new()
    {
        MediaType = image.ManifestDescriptor.MediaType,
        Digest = image.ManifestDescriptor.Digest,
        Size = image.ManifestDescriptor.Size,
        Annotations = tag is null ? null : new Dictionary<string, string> { [OciLayoutResolver.RefNameAnnotation] = tag },
    };

    /// <summary>Copies a blob into the tar and reads its stream to the end so the digest check runs.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal static async Task<bool> CopyBlobAsync(ImageBlob blob, Func<Stream, Task> write, CancellationToken ct)
    {
        Stream stream;
        try
        {
            stream = await blob.OpenAsync(ct).ConfigureAwait(false);
        }
        catch (VddkException ex) when (blob.MayBeAbsent && ex.Code == ErrorCodes.BaseImageNotFound)
        {
            return false;
        }
        await using (stream.ConfigureAwait(false))
        {
            await write(stream).ConfigureAwait(false);
            if (await stream.ReadAsync(new byte[1], ct).ConfigureAwait(false) != 0)
            {
                throw new VddkException(ErrorCodes.BlobDigestMismatch,
                    $"Blob {blob.Descriptor.Digest} is longer than the {blob.Descriptor.Size} bytes its descriptor states. Re-create the base image.", blob.Descriptor.Digest.Value);
            }
        }
        return true;
    }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))]
    private static async Task WriteTarAsync(Stream output, BuiltImage image, IImageSource baseSource, IReadOnlyList<string> tags, CancellationToken ct)
    {
        var tar = new DeterministicTarWriter(output);
        var blobs = ImageBlob.Of(image, baseSource);
        await tar.WriteDirectoryAsync("blobs", DirMode, 0, ct).ConfigureAwait(false);
        foreach (var algorithm in blobs.Select(b => b.Descriptor.Digest.Algorithm).Distinct().Order(StringComparer.Ordinal))
        {
            await tar.WriteDirectoryAsync("blobs/" + algorithm, DirMode, 0, ct).ConfigureAwait(false);
            foreach (var blob in blobs.Where(b => b.Descriptor.Digest.Algorithm == algorithm))
            {
                // A missing optional blob must not leave a header behind, so the header is written only once the
                // stream is open.
                await CopyBlobAsync(blob, stream => tar.WriteFileAsync(blob.RelativePath, FileMode, 0, blob.Descriptor.Size, stream,
                    (expected, got) => new VddkException(ErrorCodes.BlobDigestMismatch,
                        $"Blob {blob.Descriptor.Digest} ended after {got} of {expected} bytes. Re-create the base image.", blob.Descriptor.Digest.Value),
                    ct).AsTask(), ct).ConfigureAwait(false);
            }
        }
        await tar.WriteFileAsync("index.json", FileMode, 0, OciJson.Serialize(IndexFor(image, tags)), ct).ConfigureAwait(false);
        await tar.WriteFileAsync("oci-layout", FileMode, 0, OciLayoutFile, ct).ConfigureAwait(false);
        await tar.FinishAsync(ct).ConfigureAwait(false);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Nothing more to do; the name marks it as a temp.
        }
    }
}
