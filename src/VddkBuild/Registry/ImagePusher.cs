using System.Diagnostics;
using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Pushes a <see cref="BuiltImage"/>: every blob the target lacks (base layers streamed from their source, or
/// mounted when the base lives on the same registry; the VDDK layer from its file; the config), with bounded
/// parallelism, then the manifest last, under each tag. A tag therefore never points at an image whose blobs are
/// missing, and an unchanged image pushed again sends no blob.
/// </summary>
public sealed class ImagePusher(RegistrySession session)
{
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<PushResult> PushAsync(
        BuiltImage image, IImageSource baseSource, ImageReference target, IReadOnlyList<string> tags,
        PushOptions options, IBuildLog log, CancellationToken cancellationToken, EarlyLayerUpload? early = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(baseSource);
        ArgumentNullException.ThrowIfNull(target);
        PublicRegistryGuard.Check(target, options.AllowPublicRegistry, log);
        foreach (var tag in tags)
        {
            ImageReference.ValidateTag(tag);
        }
        var manifestDigest = Digest.Compute(image.ManifestBytes);
        if (manifestDigest != image.Digest)
        {
            throw new VddkException(ErrorCodes.ManifestDigestMismatch,
                $"The built image's manifest bytes have digest {manifestDigest}, not the {image.Digest} its descriptor states; the image was not assembled consistently.", target.ToString());
        }

        var clock = Stopwatch.StartNew();
        var requestsBefore = session.RequestCount;
        var client = session.GetClient(target);
        var uploader = new BlobUploader(client, target.Repository, options, log);
        var mountFrom = MountSource(baseSource, target);

        var work = new List<(Descriptor Blob, string Label, Func<CancellationToken, Task<Stream>> Open, string? MountFrom)>();
        var seen = new HashSet<Digest>();
        var baseLayers = image.Base.Layers;
        for (var i = 0; i < baseLayers.Count; i++)
        {
            var layer = baseLayers[i];
            if (seen.Add(layer.Digest))
            {
                work.Add((layer, $"base layer {i + 1}/{baseLayers.Count}", ct => baseSource.OpenBlobAsync(layer, ct), mountFrom));
            }
        }
        var vddk = image.VddkLayer;
        if (seen.Add(vddk.Descriptor.Digest))
        {
            work.Add((vddk.Descriptor, "VDDK layer", _ => Task.FromResult(OpenLayerFile(vddk)), null));
        }
        // The config is a blob like the others: it goes alongside the layers, only the manifest has to wait for all.
        if (seen.Add(image.ConfigDescriptor.Digest))
        {
            work.Add((image.ConfigDescriptor, "config", _ => Task.FromResult<Stream>(new MemoryStream(image.ConfigBytes, writable: false)), null));
        }

        var results = new BlobPushResult[work.Count];
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Clamp(options.MaxParallelUploads, 1, 16), CancellationToken = cancellationToken };
        // Largest first: the long transfer starts at once and small ones fill the other slots.
        var order = Enumerable.Range(0, work.Count).OrderByDescending(i => work[i].Blob.Size).ToList();
        await Parallel.ForEachAsync(order, parallel, [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))] async ValueTask (i, ct) =>
        {
            var item = work[i];
            // The VDDK layer may already be in an upload session, sent while the archive was checked: committing it
            // is one request. Whatever that cannot settle goes the ordinary way.
            if (early is not null && item.Blob.Digest == vddk.Descriptor.Digest
                && await early.TryCommitAsync(item.Blob, ct).ConfigureAwait(false) is { } committed)
            {
                results[i] = committed;
                return;
            }
            results[i] = await uploader.PushAsync(item.Blob, item.Label, item.Open, item.MountFrom, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);

        var references = tags.Count == 0 ? [image.Digest.Value] : tags.Distinct(StringComparer.Ordinal).ToList();
        foreach (var reference in references)
        {
            await client.PutManifestAsync(target.Repository, reference, image.ManifestDescriptor.MediaType, image.ManifestBytes, cancellationToken).ConfigureAwait(false);
        }

        var result = new PushResult(target.RepositoryOnly, image.Digest, tags.Count == 0 ? [] : references, results, session.RequestCount - requestsBefore, clock.Elapsed);
        log.Info(Summary(result));
        return result;
    }

    /// <summary>The base's repository when blobs can be mounted from it: same registry, other repository.</summary>
    private static string? MountSource(IImageSource baseSource, ImageReference target) =>
        baseSource is RegistryImageSource registrySource
        && string.Equals(registrySource.Reference.Registry, target.Registry, StringComparison.OrdinalIgnoreCase)
        && registrySource.Reference.Repository != target.Repository
            ? registrySource.Reference.Repository
            : null;

    private static Stream OpenLayerFile(LayerBlob layer)
    {
        FileStream file;
        try
        {
            file = new FileStream(layer.FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.OutputWriteFailed, $"The VDDK layer file '{layer.FilePath}' cannot be read: {ex.Message}", layer.FilePath, ex);
        }
        return new DigestVerifyingStream(file, layer.Descriptor, layer.FilePath);
    }

    private static string Summary(PushResult result)
    {
        var tags = result.Tags.Count == 0 ? "no tag" : "tags " + string.Join(", ", result.Tags);
        return $"Pushed {result.PinnedReference} ({tags}): {result.Uploaded} blob(s) uploaded ({TransferProgress.Megabytes(result.BytesUploaded)}), "
            + $"{result.Mounted} mounted ({TransferProgress.Megabytes(result.BytesMounted)}), {result.Skipped} already present ({TransferProgress.Megabytes(result.BytesSkipped)}); "
            + $"{result.RequestCount} requests in {result.Elapsed.TotalSeconds:0.0} s.";
    }
}
