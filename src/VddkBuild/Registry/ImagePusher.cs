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
        PushOptions options, IBuildLog log, CancellationToken cancellationToken, EarlyLayerUpload? early = null, EarlyBaseCopy? earlyBase = null)
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

        // Automatic format: the image goes as built (OCI) unless the registry refuses that format. What the first tag
        // names already is asked alongside the uploads: a registry that refused OCI before holds this image's Docker
        // form there, and sending that form again gives the same digest without a refused request.
        var mayFallBack = options.ImageFormat is null && image.ManifestDescriptor.MediaType == MediaTypes.OciManifest;
        var (docker, noDocker) = mayFallBack ? DockerForm(image) : (null, null);
        var tagged = docker is not null && tags.Count > 0
            ? TaggedDigestAsync(client, target.Repository, tags[0], log, cancellationToken)
            : Task.FromResult<Digest?>(null);

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
            // A base layer may be in an upload session too, copied while the archive was read.
            if (earlyBase is not null && item.Blob.Digest != vddk.Descriptor.Digest
                && await earlyBase.TryCommitAsync(item.Blob, ct).ConfigureAwait(false) is { } copied)
            {
                results[i] = copied;
                return;
            }
            results[i] = await uploader.PushAsync(item.Blob, item.Label, item.Open, item.MountFrom, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);

        var pushed = image;
        if (docker is not null && await tagged.ConfigureAwait(false) == docker.Digest)
        {
            log.Info($"{target.RepositoryOnly}:{tags[0]} already names this image as a Docker schema 2 manifest ({docker.Digest}), the format this registry took before: writing that format again.");
            pushed = docker;
        }
        var references = tags.Count == 0 ? [pushed.Digest.Value] : tags.Distinct(StringComparer.Ordinal).ToList();
        for (var i = 0; i < references.Count; i++)
        {
            try
            {
                await client.PutManifestAsync(target.Repository, references[i], pushed.ManifestDescriptor.MediaType, pushed.ManifestBytes, cancellationToken).ConfigureAwait(false);
            }
            catch (VddkException refused) when (refused.Code is ErrorCodes.ManifestFormatRefused or ErrorCodes.RegistryDenied or ErrorCodes.RegistryRequestFailed)
            {
                // A registry that keeps tags immutable refuses to write a tag that exists, even with the manifest it
                // already names: a re-run with nothing changed must not fail there. One HEAD, only after a refusal.
                var firstAutomatic = i == 0 && ReferenceEquals(pushed, image) && mayFallBack;
                var (named, current) = await TagStateAsync(client, target.Repository, references[i],
                    firstAutomatic && docker is not null ? [image, docker] : [pushed], log, cancellationToken).ConfigureAwait(false);
                if (named is not null)
                {
                    log.Info($"{target.RepositoryOnly}:{references[i]} already names this image ({named.Digest}); the registry refused to write it again ({VddkException.Reason(refused)}), as registries that keep tags immutable do, so it is left as it is.");
                    pushed = named;
                    continue;
                }
                if (refused.Code != ErrorCodes.ManifestFormatRefused)
                {
                    if (current is null)
                    {
                        throw;
                    }
                    throw new VddkException(refused.Code,
                        $"{refused.Message} The tag already names another image ({current}): a registry that keeps tags immutable (AWS ECR, Harbor's immutability rules, Docker Hub, Artifactory, Quay) refuses to change it whatever the credentials. Push another tag (VddkImageTags), or allow the tag to be overwritten.",
                        refused.Subject, refused);
                }
                if (!firstAutomatic)
                {
                    throw new VddkException(ErrorCodes.ManifestFormatRefused, $"{refused.Message}. {FormatAdvice(options.ImageFormat, pushed)}", refused.Subject, refused);
                }
                if (docker is null)
                {
                    throw new VddkException(ErrorCodes.ManifestFormatRefused,
                        $"{refused.Message}. The image cannot be sent as a Docker schema 2 manifest instead: {noDocker}", refused.Subject, refused);
                }
                log.Info($"{refused.Message}. Sending the same image as a Docker schema 2 manifest instead (the blobs are unchanged; the image digest becomes {docker.Digest}). "
                    + "VddkImageFormat=Docker chooses that format from the start.");
                pushed = docker;
                if (tags.Count == 0)
                {
                    references[0] = pushed.Digest.Value;
                }
                try
                {
                    await client.PutManifestAsync(target.Repository, references[i], pushed.ManifestDescriptor.MediaType, pushed.ManifestBytes, cancellationToken).ConfigureAwait(false);
                }
                catch (VddkException again) when (again.Code == ErrorCodes.ManifestFormatRefused)
                {
                    throw new VddkException(ErrorCodes.ManifestFormatRefused,
                        $"The registry refused the image in both manifest formats, so nothing was tagged: first the OCI manifest ({refused.Message}), then the Docker schema 2 manifest ({again.Message}). "
                        + "Check what the registry accepts for this repository (an Artifactory or Nexus repository must be of the Docker type; Quay and Harbor list allowed manifest types), or push to another registry.",
                        again.Subject, again);
                }
            }
        }

        var result = new PushResult(target.RepositoryOnly, pushed.Digest, tags.Count == 0 ? [] : references, results, session.RequestCount - requestsBefore, clock.Elapsed)
        {
            ManifestMediaType = pushed.ManifestDescriptor.MediaType,
        };
        log.Info(Summary(result));
        return result;
    }

    /// <summary>The image as a Docker schema 2 manifest, or why it cannot be one (a layer type schema 2 has no name for).</summary>
    private static (BuiltImage? Docker, string? Why) DockerForm(BuiltImage image)
    {
        try
        {
            return (DockerImageConversion.ToDocker(image), null);
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.MediaTypeUnsupported)
        {
            return (null, ex.Message);
        }
    }

    /// <summary>
    /// After a refused manifest PUT: which of <paramref name="forms"/> <paramref name="reference"/> already names (null:
    /// none), and the digest it names (null: absent, or the registry would not say). Never throws: the refusal stands.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<(BuiltImage? Named, Digest? Current)> TagStateAsync(RegistryClient client, string repository, string reference, BuiltImage[] forms, IBuildLog log, CancellationToken cancellationToken)
    {
        Digest? current;
        try
        {
            current = await client.TryGetManifestDigestAsync(repository, reference, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is VddkException or TransientRegistryException)
        {
            log.Detail($"Could not read what {client.Registry}/{RegistryClient.RepositoryReference(repository, reference)} names now ({VddkException.Reason(ex)}).");
            return (null, null);
        }
        return (forms.FirstOrDefault(form => form.Digest == current), current);
    }

    /// <summary>The digest <paramref name="tag"/> names now, or null (absent, or the registry would not say); never throws.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<Digest?> TaggedDigestAsync(RegistryClient client, string repository, string tag, IBuildLog log, CancellationToken cancellationToken)
    {
        try
        {
            return await client.TryGetManifestDigestAsync(repository, tag, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Only a hint for choosing the format: the manifest PUT reports whatever is really wrong.
            log.Detail($"Could not read what {client.Registry}/{repository}:{tag} names now ({VddkException.Reason(ex)}); the OCI manifest is tried first.");
            return null;
        }
    }

    private static string FormatAdvice(ImageFormat? chosen, BuiltImage pushed) => chosen switch
    {
        ImageFormat.Oci => "VddkImageFormat=OCI requires the OCI format, which this registry does not take: set VddkImageFormat=Docker (or leave VddkImageFormat empty, which falls back to Docker schema 2 when OCI is refused).",
        ImageFormat.Docker => "VddkImageFormat=Docker requires the Docker schema 2 format, which this registry does not take: set VddkImageFormat=OCI, or leave it empty.",
        _ => pushed.ManifestDescriptor.MediaType == MediaTypes.DockerManifest
            ? "An earlier run wrote this image to the tag as Docker schema 2, which the registry now refuses: set VddkImageFormat=OCI."
            : "The registry took the same manifest under the first tag: check the registry's rules for the other tags.",
    };

    /// <summary>The base's repository when blobs can be mounted from it: same registry, other repository.</summary>
    internal static string? MountSource(IImageSource baseSource, ImageReference target) =>
        (baseSource as RegistryImageSource ?? (baseSource as MirroredImageSource)?.Selected) is { } registrySource
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
