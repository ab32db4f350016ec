using System.Runtime.CompilerServices;
using VddkBuild.Diagnostics;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// A registry base image with registries.conf mirrors: like podman, each pull source is tried in order (mirrors, then
/// the primary location) and the first that resolves the image supplies every blob. A failure of one source is
/// logged and the next is tried; when all fail, the primary's error says what each mirror answered.
/// </summary>
public sealed class MirroredImageSource : IImageSource
{
    private readonly IReadOnlyList<(PullSource Source, RegistryImageSource Image)> _candidates;
    private readonly IBuildLog _log;
    private readonly string _configuration;
    private readonly ImageReference _requested;
    private RegistryImageSource? _selected;

    public MirroredImageSource(RegistrySession session, ImageReference requested, IReadOnlyList<PullSource> sources, string displayName, string configuration, IBuildLog log)
    {
        _requested = requested;
        DisplayName = displayName;
        _configuration = configuration;
        _log = log;
        _candidates = [.. sources.Select(s => (s, new RegistryImageSource(session, s.Reference, displayName, disconnectedHint: !s.IsMirror)))];
    }

    public string DisplayName { get; }

    /// <summary>The source the image was resolved from (null before <see cref="ResolveAsync"/> succeeded).</summary>
    public RegistryImageSource? Selected => _selected;

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        for (var i = 0; i < _candidates.Count; i++)
        {
            var (source, image) = _candidates[i];
            if (source.Blocked)
            {
                // As podman: a source whose own name is blocked is never contacted.
                var blocked = $"{(source.IsMirror ? "mirror " : string.Empty)}{source.Reference} is blocked by registry prefix {source.BlockedBy}";
                if (i == _candidates.Count - 1)
                {
                    throw new VddkException(ErrorCodes.BaseRegistryBlocked,
                        $"The base image {DisplayName} cannot be pulled: {blocked}, and its mirrors failed: {string.Join("; ", failures)}. Make a mirror hold the image, or set VddkBaseImage to an image this configuration allows (or oci-archive:FILE).",
                        DisplayName);
                }
                _log.Info($"Base image {DisplayName}: {blocked}; skipped.");
                failures.Add(blocked);
                continue;
            }
            try
            {
                var resolved = await image.ResolveAsync(platform, cancellationToken).ConfigureAwait(false);
                _selected = image;
                if (source.IsMirror)
                {
                    _log.Info($"Base image {DisplayName}: pulled from mirror {source.Reference} ({resolved.ManifestDescriptor.Digest}), as {_configuration} says.");
                }
                else if (failures.Count > 0 || source.Reference != _requested)
                {
                    _log.Info($"Base image {DisplayName}: pulled from {source.Reference} ({resolved.ManifestDescriptor.Digest}){(failures.Count > 0 ? " after its mirrors failed" : string.Empty)}, as {_configuration} says.");
                }
                return resolved;
            }
            catch (VddkException ex) when (i < _candidates.Count - 1)
            {
                _log.Info($"Base image {DisplayName}: mirror {source.Reference} failed ({ex.Code}: {VddkException.Reason(ex)}); trying {_candidates[i + 1].Source.Reference}.");
                failures.Add($"mirror {source.Reference}: {ex.Code} {VddkException.Reason(ex)}");
            }
            catch (VddkException ex) when (failures.Count > 0)
            {
                throw new VddkException(ex.Code,
                    $"{ex.Message} Before it, the mirrors from {_configuration} were tried and failed: {string.Join("; ", failures)}.", ex.Subject, ex);
            }
        }
        throw new InvalidOperationException("No pull source for the base image.");
    }

    public Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken cancellationToken) =>
        (_selected ?? throw new InvalidOperationException("The base image was not resolved.")).OpenBlobAsync(descriptor, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
