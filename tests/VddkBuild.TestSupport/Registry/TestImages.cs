using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using VddkBuild.Images;
using VddkBuild.Oci;

namespace VddkBuild.TestSupport.Registry;

/// <summary>
/// Small images made by hand for registry tests: random gzip tar layers, configs with correct diff_ids, OCI
/// manifests, and base images stacked from them. Nothing here depends on the project's own layer code.
/// </summary>
public static class TestImages
{
    private static readonly DateTimeOffset Created = new(2024, 1, 2, 3, 4, 5, TimeSpan.Zero);

    /// <summary>A gzip tar with one file of <paramref name="size"/> pseudo-random bytes (same seed, same blob).</summary>
    public static LayerBlob CreateLayer(string directory, string name, int size, int seed)
    {
        Directory.CreateDirectory(directory);
        var content = new byte[size];
        new Random(seed).NextBytes(content);
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            var entry = new UstarTarEntry(TarEntryType.RegularFile, $"data/{name}.bin")
            {
                DataStream = new MemoryStream(content),
                ModificationTime = Created,
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            };
            writer.WriteEntry(entry);
        }
        var tarBytes = tar.ToArray();
        var path = Path.Combine(directory, name + ".tar.gz");
        using (var file = File.Create(path))
        using (var gzip = new GZipStream(file, CompressionLevel.Fastest))
        {
            gzip.Write(tarBytes);
        }
        var bytes = File.ReadAllBytes(path);
        return new LayerBlob(path,
            new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Compute(bytes), Size = bytes.LongLength },
            Digest.Compute(tarBytes));
    }

    /// <summary>An empty base (no layers) for images that start from nothing.</summary>
    public static SourceImage Scratch(Platform platform)
    {
        var config = ConfigBytes(platform, []);
        var manifest = new ImageManifest
        {
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Compute(config), Size = config.Length },
            Layers = [],
        };
        var manifestBytes = OciJson.Serialize(manifest);
        return new SourceImage(new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Compute(manifestBytes), Size = manifestBytes.Length },
            manifestBytes, manifest, config);
    }

    /// <summary><paramref name="baseImage"/> plus <paramref name="layer"/>: config with the diff_id appended, OCI manifest.</summary>
    public static BuiltImage Build(SourceImage baseImage, LayerBlob layer, Platform? platform = null)
    {
        var config = JsonNode.Parse(baseImage.ConfigBytes)!.AsObject();
        if (platform is not null)
        {
            config["os"] = platform.Os;
            config["architecture"] = platform.Architecture;
        }
        var rootfs = config["rootfs"]?.AsObject() ?? new JsonObject { ["type"] = "layers" };
        var diffIds = rootfs["diff_ids"]?.AsArray() ?? [];
        diffIds.Add(layer.DiffId.Value);
        rootfs["diff_ids"] = diffIds.DeepClone();
        config["rootfs"] = rootfs.DeepClone();
        config["created"] = Created.ToString("yyyy-MM-ddTHH:mm:ssZ");
        var configBytes = System.Text.Encoding.UTF8.GetBytes(config.ToJsonString());
        var configDescriptor = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = Digest.Compute(configBytes), Size = configBytes.Length };
        var manifest = new ImageManifest
        {
            MediaType = MediaTypes.OciManifest,
            Config = configDescriptor,
            Layers = [.. baseImage.Layers, layer.Descriptor],
        };
        var manifestBytes = OciJson.Serialize(manifest);
        var manifestDescriptor = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = Digest.Compute(manifestBytes), Size = manifestBytes.Length };
        return new BuiltImage(baseImage, layer, configDescriptor, configBytes, manifestDescriptor, manifestBytes);
    }

    /// <summary>A built image seen as a source image (to stack another layer on it).</summary>
    public static SourceImage AsSource(BuiltImage image) =>
        new(image.ManifestDescriptor, image.ManifestBytes, OciJson.Deserialize<ImageManifest>(image.ManifestBytes, "test manifest"), image.ConfigBytes);

    private static byte[] ConfigBytes(Platform platform, IReadOnlyList<Digest> diffIds) =>
        System.Text.Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = platform.Architecture,
            ["os"] = platform.Os,
            ["config"] = new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray([.. diffIds.Select(d => (JsonNode)d.Value)]) },
        }.ToJsonString());

    /// <summary>Random bytes of a given size, for tests that need unique content.</summary>
    public static byte[] RandomBytes(int size) => RandomNumberGenerator.GetBytes(size);
}

/// <summary>An image source serving blobs from local layer files (the base of a hand-made image).</summary>
public sealed class LocalBlobSource(string displayName, IEnumerable<LayerBlob> layers) : IImageSource
{
    private readonly Dictionary<Digest, LayerBlob> _layers = layers.ToDictionary(l => l.Descriptor.Digest);

    public string DisplayName => displayName;

    private int _opened;

    public int Opened => _opened;

    public Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken) =>
        throw new NotSupportedException("LocalBlobSource only serves blobs.");

    public Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _opened);
        return Task.FromResult<Stream>(File.OpenRead(_layers[descriptor.Digest].FilePath));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
