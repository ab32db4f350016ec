using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using VddkBuild.Oci;
using VddkBuild.Tests.Layers;

namespace VddkBuild.Tests.Images;

/// <summary>Builds small OCI layouts (stand-ins for UBI) blob by blob, so tests control every byte and media type.</summary>
internal sealed class TestLayout
{
    public TestLayout(string root)
    {
        Root = root;
        Directory.CreateDirectory(Path.Combine(root, "blobs", "sha256"));
        File.WriteAllText(Path.Combine(root, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
    }

    public string Root { get; }

    public Descriptor AddBlob(byte[] bytes, string mediaType, Platform? platform = null)
    {
        var digest = Digest.Compute(bytes);
        File.WriteAllBytes(BlobPath(digest), bytes);
        return new Descriptor { MediaType = mediaType, Digest = digest, Size = bytes.Length, Platform = platform };
    }

    public string BlobPath(Digest digest) => Path.Combine(Root, "blobs", "sha256", digest.Hex);

    /// <summary>A base image with <paramref name="layerCount"/> small gzip layers and a config carrying fields nobody here knows.</summary>
    public Descriptor AddImage(string architecture = "amd64", string? variant = null, bool docker = false, int layerCount = 2, Action<JsonObject>? editConfig = null)
    {
        var layers = new List<Descriptor>();
        var diffIds = new JsonArray();
        for (int i = 0; i < layerCount; i++)
        {
            var (gz, tar) = MakeLayer($"{architecture}{variant}-{i}");
            layers.Add(AddBlob(gz, docker ? MediaTypes.DockerLayerGzip : MediaTypes.OciLayerGzip));
            diffIds.Add(Digest.Compute(tar).Value);
        }
        var config = new JsonObject
        {
            ["architecture"] = architecture,
            ["os"] = "linux",
            ["x-unknown-top"] = new JsonObject { ["keep"] = true, ["n"] = 1.50 },
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/usr/local/bin:/usr/bin", "container=oci"),
                ["Cmd"] = new JsonArray("/bin/bash"),
                ["Labels"] = new JsonObject { ["name"] = "ubi9-minimal", ["org.opencontainers.image.title"] = "base title" },
                ["x-unknown-inner"] = "kept",
            },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = diffIds },
            ["history"] = new JsonArray(new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = "base build" }),
        };
        if (variant is not null)
        {
            config["variant"] = variant;
        }
        editConfig?.Invoke(config);
        var configDescriptor = AddBlob(Encoding.UTF8.GetBytes(config.ToJsonString()), docker ? MediaTypes.DockerConfig : MediaTypes.OciConfig);
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest,
            ["config"] = Node(configDescriptor),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode?)Node(l))]),
        };
        return AddBlob(Encoding.UTF8.GetBytes(manifest.ToJsonString()), docker ? MediaTypes.DockerManifest : MediaTypes.OciManifest,
            new Platform { Os = "linux", Architecture = architecture, Variant = variant });
    }

    public Descriptor AddIndex(IEnumerable<Descriptor> manifests, bool docker = false)
    {
        var index = new ImageIndex { MediaType = docker ? MediaTypes.DockerManifestList : MediaTypes.OciIndex, Manifests = [.. manifests] };
        return AddBlob(OciJson.Serialize(index), index.MediaType!);
    }

    /// <summary>Writes index.json; a descriptor's platform is kept only when <paramref name="keepPlatform"/> (layouts usually omit it).</summary>
    public void WriteIndex(bool keepPlatform, params (Descriptor Descriptor, string? Tag)[] entries)
    {
        var index = new ImageIndex
        {
            MediaType = MediaTypes.OciIndex,
            Manifests = [.. entries.Select(e => e.Descriptor with
            {
                Platform = keepPlatform ? e.Descriptor.Platform : null,
                Annotations = e.Tag is null ? null : new Dictionary<string, string> { ["org.opencontainers.image.ref.name"] = e.Tag },
            })],
        };
        File.WriteAllBytes(Path.Combine(Root, "index.json"), OciJson.Serialize(index));
    }

    /// <summary>Packs the layout with GNU tar (members named ./...), as a user would.</summary>
    public string Pack(string archivePath, params string[] extraTarArgs)
    {
        CliTool.Run("tar", [.. extraTarArgs, "-C", Root, "-cf", archivePath, "."]);
        return archivePath;
    }

    public static JsonObject Node(Descriptor d) =>
        new() { ["mediaType"] = d.MediaType, ["digest"] = d.Digest.Value, ["size"] = d.Size };

    private static (byte[] Gz, byte[] Tar) MakeLayer(string seed)
    {
        var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            writer.WriteEntry(new UstarTarEntry(TarEntryType.Directory, "etc/") { ModificationTime = DateTimeOffset.UnixEpoch });
            var file = new UstarTarEntry(TarEntryType.RegularFile, "etc/os-release")
            {
                ModificationTime = DateTimeOffset.UnixEpoch,
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes($"NAME=test {seed}\n")),
            };
            writer.WriteEntry(file);
        }
        var gz = new MemoryStream();
        using (var gzip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(tar.ToArray());
        }
        return (gz.ToArray(), tar.ToArray());
    }

    public static string Sha256(byte[] bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
}
