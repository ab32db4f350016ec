using System.Runtime.CompilerServices;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Layers;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Publishing;

/// <summary>
/// archive entries -> layer -> image. The archive is read once, straight into the layer writer (or not at all when the
/// layer cache knows its bytes), while the base image is resolved at the same time; nothing is published under a final
/// name until every check has passed.
/// </summary>
public static class VddkImagePipeline
{
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<VddkImageBuildResult> BuildAsync(VddkImageRequest request, IBuildLog log, CancellationToken cancellationToken)
    {
        // Before any thread opens it: a FIFO or a device would block the build or never end.
        VddkArchiveFile.Check(request.ArchivePath);

        if (!Platform.LinuxAmd64.Matches(request.Platform))
        {
            // VMware ships the VDDK for x86_64 Linux only; the init container would copy it, but virt-v2v and nbdkit
            // on the node cannot load its libraries.
            log.Warn(ErrorCodes.PlatformNotAmd64,
                $"VddkPlatform is {request.Platform}, but the VDDK's libraries are built for linux/amd64 (x86_64) only: an image for {request.Platform} copies them, "
                + "yet Forklift cannot load them on such nodes. Leave VddkPlatform at linux/amd64 (its default); it only chooses which image of a multi-platform base to build on.");
        }
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // On a thread of its own from the first line: resolving a registry base starts with connection set-up (and an
        // HTTPS probe for insecure registries) that would otherwise hold up the archive's reading.
        var baseTask = Task.Run(() => ResolveBaseAsync(request, linked.Token), linked.Token);
        VddkLayer made;
        SourceImage? baseImage = null;
        try
        {
            // Cache hit, the archive itself, or one streaming pass with gzip on all cores (see VddkLayerFactory).
            // The layer is published only once the base is known to be usable: a bad base (unknown platform, a
            // broken registry answer) leaves nothing behind, like every other failure.
            made = await VddkArchiveFile.ReadWhileUnchangedAsync(request.ArchivePath, () => VddkLayerFactory.MakeAsync(request.ArchivePath, request.ArchiveOptions,
                new LayerWriterOptions { SourceDateEpoch = request.SourceDateEpoch, UseArchiveAsLayer = request.UseArchiveAsLayer }, request.WorkDirectory, log, linked.Token,
                useCache: request.UseLayerCache,
                beforePublish: [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder))] async Task (_) =>
                {
                    baseImage = await baseTask.ConfigureAwait(false);
                    // A base the image cannot be assembled on is refused here, before the layer is published (and
                    // before a layer sent early becomes a blob in the registry).
                    CheckBase(baseImage, request.Format);
                }, upload: request.LayerUpload, deferRecords: true)).ConfigureAwait(false);
            baseImage ??= await baseTask.ConfigureAwait(false);
        }
        catch
        {
            // The first error is the one to report; stop resolving the base and observe its outcome.
            await linked.CancelAsync().ConfigureAwait(false);
            try { await baseTask.ConfigureAwait(false); } catch { /* superseded by the error being thrown */ }
            throw;
        }
        var (layer, contents) = (made.Layer, made.Contents);

        var how = made.Origin switch
        {
            LayerOrigin.Cache => "reused from the layer cache",
            LayerOrigin.Archive => "the archive's own gzip",
            _ => "written",
        };
        log.Detail($"VDDK layer {layer.Descriptor.Digest} ({layer.Descriptor.Size} bytes, diffID {layer.DiffId}): {how} in {made.Elapsed.TotalSeconds:0.00} s.");

        var created = request.SourceDateEpoch is { } epoch && epoch < contents.NewestModificationTime ? epoch : contents.NewestModificationTime;
        var settings = new ImageSettings
        {
            User = request.User,
            VddkVersion = contents.Version,
            VddkBuildNumber = contents.BuildNumber,
            Created = created,
            Labels = request.Labels,
        };
        var image = ImageBuilder.Build(baseImage, layer, settings);
        return new VddkImageBuildResult(contents, request.Format == ImageFormat.Docker ? DockerImageConversion.ToDocker(image) : image) { Recorded = made.Recorded };
    }

    /// <summary>
    /// Resolves the base and, once it has passed the checks a base must pass, lets the copy of its layers begin while
    /// the archive is still read. A base that fails them is not copied; its error is reported where the layer waits
    /// for the base, before anything is published.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private static async Task<SourceImage> ResolveBaseAsync(VddkImageRequest request, CancellationToken cancellationToken)
    {
        var resolved = await request.BaseSource.ResolveAsync(request.Platform, cancellationToken).ConfigureAwait(false);
        if (request.BaseCopy is { } copy)
        {
            try
            {
                CheckBase(resolved, request.Format);
            }
            catch (VddkException)
            {
                return resolved;
            }
            copy.Begin(resolved, request.BaseSource);
        }
        return resolved;
    }

    private static void CheckBase(SourceImage baseImage, ImageFormat? format)
    {
        ImageBuilder.CheckBase(baseImage);
        if (format == ImageFormat.Docker)
        {
            DockerImageConversion.CheckBase(baseImage);
        }
    }
}
