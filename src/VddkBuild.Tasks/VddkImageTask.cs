using System.Runtime.CompilerServices;
using Microsoft.Build.Framework;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Publishing;
using VddkBuild.Registry;
using VddkBuild.Threading;

namespace VddkBuild.Tasks;

/// <summary>
/// What the image-building tasks share: binding the archive, base image, layer and registry-connection properties
/// to the engine, and building the image. Secrets are never properties: registry passwords come from the
/// environment or credential files inside the registry client.
/// </summary>
public abstract class VddkImageTask : VddkTask
{
    public string? Archive { get; set; }
    public string? BaseImage { get; set; }
    public string? Platform { get; set; }
    public string? User { get; set; }
    public string? ImageTags { get; set; }
    [Required] public string IntermediateDirectory { get; set; } = string.Empty;
    public string? SourceDateEpoch { get; set; }

    /// <summary>VddkImageFormat: OCI, Docker, or empty (automatic: OCI, and Docker schema 2 where a registry refuses OCI).</summary>
    public string? ImageFormat { get; set; }

    /// <summary>VddkLayerFromArchive: use the archive file itself as the layer when it already is a correct one (default true).</summary>
    public string? LayerFromArchive { get; set; }

    /// <summary>VddkEarlyLayerUpload: send that layer while the archive is still being checked (default true; pushes only).</summary>
    public string? EarlyLayerUpload { get; set; }

    /// <summary>VddkEarlyBaseCopy: copy the base's layers from another registry while the archive is read (default true; pushes only).</summary>
    public string? EarlyBaseCopy { get; set; }
    public ITaskItem[] Labels { get; set; } = [];
    public string? MaxEntrySize { get; set; }
    public string? MaxTotalSize { get; set; }
    public string? MaxEntryCount { get; set; }

    /// <summary>VddkAddSoname8Link: add lib64/libvixDiskLib.so.8 -> libvixDiskLib.so.9.x.y.z to a VDDK 9+ tree (default false).</summary>
    public string? AddSoname8Link { get; set; }

    /// <summary>PEM file of extra CA certificates for registries (VddkRegistryCaBundle).</summary>
    public string? RegistryCaBundle { get; set; }

    /// <summary>Registries (host[:port], ';'-separated) reached over plain HTTP or unverified TLS, with a warning.</summary>
    public string? InsecureRegistries { get; set; }

    /// <summary>User name for the registries (not secret); the password comes from the environment or a credential file.</summary>
    public string? RegistryUserName { get; set; }

    /// <summary>
    /// VddkRegistriesConf: mirrors for a registry base image from registries.conf as podman reads it: empty or true (the usual
    /// files, CONTAINERS_REGISTRIES_CONF first), false (not read), or the path of the main file to use instead.
    /// </summary>
    public string? RegistriesConf { get; set; }

    [Output] public string? Version { get; private set; }
    [Output] public string? BuildNumber { get; private set; }
    [Output] public string? ImageDigest { get; protected set; }

    private Task _recorded = Task.CompletedTask;
    private (ImageReference Requested, IReadOnlyList<PullSource> Sources, string Files)? _basePull;
    private bool _basePullPlanned;

    /// <summary>The layer cache entry and archive memo are written while the image is pushed; they end with the task.</summary>
    protected override void WaitForBackgroundWrites() => _recorded.GetAwaiter().GetResult();

    /// <summary>The registry session for base pulls (and pushes); created on first use, disposed after the task.</summary>
    /// <param name="pushRegistry">The registry pushed to, if any: the environment's push secrets go there only.</param>
    protected RegistrySession OpenRegistrySession(IBuildLog log, IReadOnlyCollection<string> extraInsecure, string? pushRegistry = null)
    {
        SecretEnvironmentGuard.Check(log);
        var transport = new RegistryTransportOptions
        {
            CaBundlePath = string.IsNullOrWhiteSpace(RegistryCaBundle) ? null : Path.GetFullPath(RegistryCaBundle),
            InsecureRegistries = [.. TaskProperties.List(InsecureRegistries), .. extraInsecure, .. BaseMirrorInsecureHosts(pushRegistry)],
        }.WithEnvironment();
        return RegistrySession.Create(transport, new CredentialOptions { UserName = NullIfBlank(RegistryUserName), PushRegistry = pushRegistry, ScopeEnvironmentSecrets = true }, log);
    }

    /// <summary>Builds the image from the archive and the base; the caller disposes the returned source.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    protected async Task<(VddkImageBuildResult Result, IImageSource BaseSource, IReadOnlyList<string> Tags)> BuildImageAsync(
        RegistrySession? registry, IBuildLog log, CancellationToken cancellationToken, Layers.ILayerUploadStarter? layerUpload = null,
        IBaseCopyStarter? baseCopy = null)
    {
        var archive = TaskProperties.Required(Archive, "VddkArchive",
            "Pass the VDDK tarball: dotnet build -t:PublishVddk -p:VddkArchive=/path/to/VMware-vix-disklib-<version>.x86_64.tar.gz");
        var baseReference = TaskProperties.Required(BaseImage, "VddkBaseImage",
            "Set it to a registry reference (registry.access.redhat.com/ubi8/ubi-minimal:latest), oci:DIR[:tag] or oci-archive:FILE[:tag].");
        var format = ImageFormatChoice();
        // Tags are checked before any work, so that a tag the registry would reject leaves nothing behind.
        var tags = TaskProperties.List(ImageTags);
        foreach (var tag in tags)
        {
            ImageReference.ValidateTag(tag);
        }
        var baseSource = ImageSourceFactory.Create(
            ImageSourceReference.Parse(baseReference).RelativeTo(ProjectFolder),
            reference => registry is null
                ? throw new VddkException(ErrorCodes.BaseNeedsRegistry, $"Base image '{reference.Raw}' is a registry reference, but this task has no registry connection.", reference.Raw)
                : PlanBasePull() is { } pull && (pull.Sources.Count > 1 || pull.Sources[0].Reference != pull.Requested)
                    ? new MirroredImageSource(registry, pull.Requested, pull.Sources, reference.Raw, pull.Files, log)
                    : new RegistryImageSource(registry, ParseBaseReference(reference.Raw), reference.Raw));
        try
        {
            var request = new VddkImageRequest
            {
                ArchivePath = ArchivePath(archive, log),
                BaseSource = baseSource,
                Platform = string.IsNullOrWhiteSpace(Platform) ? Oci.Platform.LinuxAmd64 : Oci.Platform.Parse(Platform),
                User = TaskProperties.ImageUser(User, "VddkUser"),
                SourceDateEpoch = TaskProperties.Epoch(SourceDateEpoch, "VddkSourceDateEpoch (SOURCE_DATE_EPOCH)"),
                UseArchiveAsLayer = TaskProperties.Flag(LayerFromArchive, "VddkLayerFromArchive", fallback: true),
                WorkDirectory = Path.GetFullPath(IntermediateDirectory),
                ArchiveOptions = ArchiveOptions(MaxEntrySize, MaxTotalSize, MaxEntryCount, AddSoname8Link),
                Labels = Labels.ToDictionary(l => l.ItemSpec, l => l.GetMetadata("Value"), StringComparer.Ordinal),
                LayerUpload = layerUpload,
                BaseCopy = baseCopy,
                Format = format,
            };
            var result = await VddkImagePipeline.BuildAsync(request, log, cancellationToken).ConfigureAwait(false);
            _recorded = result.Recorded;
            Version = result.Archive.Version;
            BuildNumber = result.Archive.BuildNumber ?? string.Empty;
            ImageDigest = result.Image.Digest.Value;
            return (result, baseSource, tags.Count == 0 ? [result.Archive.Version] : tags);
        }
        catch
        {
            // The copy of the base's layers reads from the source: stopped (and its sessions cancelled) first.
            if (baseCopy is IAsyncDisposable copy)
            {
                await copy.DisposeAsync().ConfigureAwait(false);
            }
            await baseSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The manifest format VddkImageFormat asks for; null is automatic. An invalid value is VDDK5002.</summary>
    protected Images.ImageFormat? ImageFormatChoice() => TaskProperties.ImageFormat(ImageFormat, "VddkImageFormat");

    /// <summary>The upload that sends the layer while the archive is checked, or null when VddkEarlyLayerUpload is false.</summary>
    protected EarlyLayerUpload? StartEarlyLayerUpload(RegistrySession registry, ImageReference target, PushOptions options, IBuildLog log, CancellationToken cancellationToken) =>
        TaskProperties.Flag(EarlyLayerUpload, "VddkEarlyLayerUpload", fallback: true)
            ? new EarlyLayerUpload(registry, target, options, log, cancellationToken)
            : null;

    /// <summary>The copy of the base's layers while the archive is read, or null when VddkEarlyBaseCopy is false.</summary>
    protected EarlyBaseCopy? StartEarlyBaseCopy(RegistrySession registry, ImageReference target, PushOptions options, IBuildLog log, CancellationToken cancellationToken) =>
        TaskProperties.Flag(EarlyBaseCopy, "VddkEarlyBaseCopy", fallback: true)
            ? new EarlyBaseCopy(registry, target, options, log, cancellationToken)
            : null;

    /// <summary>
    /// The hosts registries.conf marks insecure among the base image's pull sources, for the registry session; never
    /// the registry pushed to, which registries.conf does not govern here.
    /// </summary>
    protected IReadOnlyList<string> BaseMirrorInsecureHosts(string? pushRegistry) =>
        PlanBasePull() is { } pull
            ? [.. pull.Sources.Where(s => s.Insecure && !s.Blocked && !string.Equals(s.Reference.Registry, pushRegistry, StringComparison.OrdinalIgnoreCase)).Select(s => s.Reference.Registry).Distinct(StringComparer.OrdinalIgnoreCase)]
            : [];

    /// <summary>
    /// Where a registry base image is pulled from according to registries.conf (VddkRegistriesConf), or null when the
    /// base is local or registries.conf is switched off. Read once per task; a blocked base is VDDK2011, a malformed file VDDK2010.
    /// </summary>
    private (ImageReference Requested, IReadOnlyList<PullSource> Sources, string Files)? PlanBasePull()
    {
        if (_basePullPlanned)
        {
            return _basePull;
        }
        _basePullPlanned = true;
        var setting = RegistriesConf?.Trim() ?? string.Empty;
        if (string.IsNullOrWhiteSpace(BaseImage) || setting.Equals("false", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        var reference = ImageSourceReference.Parse(BaseImage);
        if (reference.Kind != ImageSourceKind.Registry)
        {
            return null;
        }
        var requested = ParseBaseReference(reference.Raw);
        var explicitFile = setting.Length == 0 || setting.Equals("true", StringComparison.OrdinalIgnoreCase)
            ? null
            : Path.GetFullPath(setting, ProjectFolder);
        var configuration = VddkBuild.Registry.RegistriesConf.Load(Environment.GetEnvironmentVariable, explicitFile);
        _basePull = (requested, configuration.PullSources(requested), configuration.Files.Count == 0 ? "registries.conf" : string.Join(", ", configuration.Files));
        return _basePull;
    }

    /// <summary>A registry reference in VddkBaseImage; a malformed one is VDDK2001 naming the property.</summary>
    private static ImageReference ParseBaseReference(string raw)
    {
        try
        {
            return ImageReference.Parse(raw);
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.ImageReferenceInvalid)
        {
            throw new VddkException(ErrorCodes.BaseReferenceInvalid, $"VddkBaseImage: {ex.Message} Or give a local copy as oci:DIR[:tag] or oci-archive:FILE[:tag].", raw, ex);
        }
    }

    internal static VddkArchiveReadOptions ArchiveOptions(string? maxEntrySize, string? maxTotalSize, string? maxEntryCount, string? addSoname8Link)
    {
        var defaults = VddkArchiveReadOptions.Default;
        return defaults with
        {
            AddSoname8Link = TaskProperties.Flag(addSoname8Link, "VddkAddSoname8Link"),
            MaxEntryBytes = TaskProperties.Size(maxEntrySize, "VddkMaxEntrySize", defaults.MaxEntryBytes),
            MaxTotalBytes = TaskProperties.Size(maxTotalSize, "VddkMaxTotalSize", defaults.MaxTotalBytes),
            MaxEntryCount = TaskProperties.Count(maxEntryCount, "VddkMaxEntryCount", defaults.MaxEntryCount),
        };
    }

    protected static string? NullIfBlank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    protected static string Describe(VddkImageBuildResult result) =>
        $"VDDK {result.Archive.Version}{(result.Archive.BuildNumber is { } b ? $" build {b}" : string.Empty)}";
}
