using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using VddkBuild.Oci;

namespace VddkBuild.Images;

/// <summary>
/// Base image + VDDK layer + settings -> the new image's config and manifest bytes. Pure: same inputs, same bytes.
/// The base config is edited as a JSON tree so fields this project does not know survive unchanged.
/// </summary>
public static class ImageBuilder
{
    public const string TitleLabel = "org.opencontainers.image.title";
    public const string VersionLabel = "org.opencontainers.image.version";
    public const string DescriptionLabel = "org.opencontainers.image.description";
    public const string BuildNumberLabel = "io.github.vddkbuild.vddk.build";
    public const string BaseDigestAnnotation = "org.opencontainers.image.base.digest";

    /// <summary>
    /// Throws what <see cref="Build"/> would throw because of the base (a config that cannot be used, layers it
    /// cannot build on), so that a build can refuse the base before it publishes anything made from the archive.
    /// </summary>
    public static void CheckBase(SourceImage baseImage)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        _ = BaseDiffIds(baseImage);
        foreach (var layer in baseImage.Layers)
        {
            _ = ToOciLayer(layer);
        }
    }

    public static BuiltImage Build(SourceImage baseImage, LayerBlob layer, ImageSettings settings)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(settings);

        var (config, diffIds) = BaseDiffIds(baseImage);
        var created = FormatTime(settings.Created);

        var runConfig = config["config"] as JsonObject;
        if (runConfig is null)
        {
            runConfig = new JsonObject();
            config["config"] = runConfig;
        }
        runConfig["User"] = settings.User;
        runConfig["Entrypoint"] = new JsonArray([.. settings.Entrypoint.Select(a => (JsonNode?)JsonValue.Create(a))]);
        runConfig.Remove("Cmd"); // the base's CMD would become arguments of cp
        SetLabels(runConfig, settings);

        config["created"] = created;
        var history = config["history"] as JsonArray;
        if (history is null)
        {
            history = new JsonArray();
            config["history"] = history;
        }
        PadHistory(history, baseImage.Layers.Count);
        history.Add(new JsonObject
        {
            ["created"] = created,
            ["created_by"] = $"COPY {ImageSettings.TreeRoot} /{ImageSettings.TreeRoot} # VDDK {settings.VddkVersion}, VddkBuild",
        });
        diffIds.Add(layer.DiffId.Value);

        var configBytes = JsonSerializer.SerializeToUtf8Bytes(config, OciJson.Options);
        var configDescriptor = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Compute(configBytes), Size = configBytes.Length };

        var manifest = new ImageManifest
        {
            SchemaVersion = 2,
            MediaType = MediaTypes.OciManifest,
            Config = configDescriptor,
            Layers = [.. baseImage.Layers.Select(ToOciLayer), layer.Descriptor],
            Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                [BaseDigestAnnotation] = baseImage.ManifestDescriptor.Digest.Value,
            },
        };
        var manifestBytes = OciJson.Serialize(manifest);
        var manifestDescriptor = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Compute(manifestBytes), Size = manifestBytes.Length };
        return new BuiltImage(baseImage, layer, configDescriptor, configBytes, manifestDescriptor, manifestBytes);
    }

    /// <summary>
    /// Adds an entry per base layer that the base's history does not account for (a base without history, as some
    /// image tools write): builders that take the image as their base (buildah, podman build) pair non-empty history
    /// entries with layers and refuse an image where the counts differ, and without this the added entry would make
    /// them differ. A base history already consistent, or with more entries than layers, is left as it is.
    /// </summary>
    private static void PadHistory(JsonArray history, int baseLayerCount)
    {
        var accounted = history.Count(entry => !(entry is JsonObject o && o["empty_layer"] is JsonValue v && v.TryGetValue<bool>(out var empty) && empty));
        for (var i = accounted; i < baseLayerCount; i++)
        {
            history.Add(new JsonObject { ["comment"] = "a layer of the base image, which recorded no history for it" });
        }
    }

    /// <summary>RFC 3339 in UTC with whole seconds, e.g. 2024-05-01T12:00:00Z.</summary>
    public static string FormatTime(DateTimeOffset time) =>
        DateTimeOffset.FromUnixTimeSeconds(time.ToUnixTimeSeconds()).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// Docker layer media types become their OCI equivalents (same bytes, same digest). Foreign/non-distributable
    /// layers keep their type and URLs: they are not ours to redistribute.
    /// </summary>
    public static Descriptor ToOciLayer(Descriptor layer)
    {
        var mediaType = layer.MediaType switch
        {
            MediaTypes.DockerLayerGzip => MediaTypes.OciLayerGzip,
            "application/vnd.docker.image.rootfs.diff.tar" => MediaTypes.OciLayerTar,
            MediaTypes.OciLayerGzip or MediaTypes.OciLayerTar or MediaTypes.OciLayerZstd => layer.MediaType,
            MediaTypes.DockerForeignLayerGzip => layer.MediaType,
            _ when layer.MediaType.StartsWith("application/vnd.oci.image.layer.nondistributable.v1.tar", StringComparison.Ordinal) => layer.MediaType,
            _ => throw new VddkException(ErrorCodes.MediaTypeUnsupported,
                $"Base layer {layer.Digest} has media type '{layer.MediaType}', which is not a tar layer this project can build on (encrypted or unknown). Choose another base image.",
                layer.Digest.Value),
        };
        return new Descriptor
        {
            MediaType = mediaType,
            Digest = layer.Digest,
            Size = layer.Size,
            Urls = layer.Urls,
            Annotations = layer.Annotations is null ? null : new SortedDictionary<string, string>(layer.Annotations.ToDictionary(), StringComparer.Ordinal),
        };
    }

    private static JsonObject ParseConfig(SourceImage baseImage)
    {
        try
        {
            var config = JsonNode.Parse(baseImage.ConfigBytes) as JsonObject
                ?? throw InvalidConfig(baseImage, "it is not a JSON object");
            _ = config.Count; // JsonObject fills its dictionary lazily; duplicate keys surface here, not later
            return config;
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException)
        {
            throw InvalidConfig(baseImage, $"it is not valid JSON ({ex.Message})");
        }
    }

    /// <summary>The base config, parsed, and its diff_ids, one per layer of the base manifest.</summary>
    private static (JsonObject Config, JsonArray DiffIds) BaseDiffIds(SourceImage baseImage)
    {
        var config = ParseConfig(baseImage);
        var diffIds = DiffIds(config, baseImage);
        if (diffIds.Count != baseImage.Layers.Count)
        {
            throw new VddkException(ErrorCodes.ImageLayoutInvalid,
                $"The base image is inconsistent: its manifest lists {baseImage.Layers.Count} layers but its config {diffIds.Count} diff_ids. Use an intact base image.",
                baseImage.ManifestDescriptor.Digest.Value);
        }
        return (config, diffIds);
    }

    private static JsonArray DiffIds(JsonObject config, SourceImage baseImage)
    {
        if (config["rootfs"] is not JsonObject rootfs || rootfs["diff_ids"] is not JsonArray diffIds)
        {
            throw InvalidConfig(baseImage, "it has no rootfs.diff_ids list");
        }
        return diffIds;
    }

    private static void SetLabels(JsonObject runConfig, ImageSettings settings)
    {
        var labels = runConfig["Labels"] as JsonObject;
        if (labels is null)
        {
            labels = new JsonObject();
            runConfig["Labels"] = labels;
        }
        var build = settings.VddkBuildNumber is null ? "" : $" build {settings.VddkBuildNumber}";
        labels[TitleLabel] = "VMware VDDK for Forklift (MTV)";
        labels[VersionLabel] = settings.VddkVersion;
        labels[DescriptionLabel] =
            $"VMware Virtual Disk Development Kit {settings.VddkVersion}{build}; its entrypoint copies /{ImageSettings.TreeRoot} to /opt for the Migration Toolkit for Virtualization.";
        if (settings.VddkBuildNumber is not null)
        {
            labels[BuildNumberLabel] = settings.VddkBuildNumber;
        }
        else
        {
            labels.Remove(BuildNumberLabel);
        }
        foreach (var (key, value) in settings.Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            labels[key] = value;
        }
    }

    private static VddkException InvalidConfig(SourceImage baseImage, string why) =>
        new(ErrorCodes.ImageLayoutInvalid,
            $"The base image's config {baseImage.Manifest.Config.Digest} cannot be used: {why}. Use an intact base image.",
            baseImage.Manifest.Config.Digest.Value);
}
