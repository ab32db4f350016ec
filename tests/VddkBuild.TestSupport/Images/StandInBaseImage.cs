using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Images;

/// <summary>
/// A stand-in for ubi-minimal, which cannot be pulled here: Debian's static busybox laid out like UBI
/// (<c>/bin -> usr/bin</c>, <c>/lib64 -> usr/lib64</c>, <c>/sbin -> usr/sbin</c>, <c>/opt</c>, <c>/tmp</c> 1777,
/// <c>/etc/passwd</c> with root and uid 1001), offered as an OCI image index with linux/amd64 and linux/arm64/v8
/// manifests so platform selection is exercised. Each platform's layer carries <c>/etc/vddkbuild-platform</c> naming
/// it, so the manifests differ and a running container tells which one was picked.
/// Built with System.Formats.Tar and hand-written JSON, independently of the project's own layer and OCI code, so it
/// can judge that code. Deterministic: the same busybox gives the same digests on every run.
/// </summary>
public static class StandInBaseImage
{
    public const string DefaultTag = "latest";

    public const string DefaultBusyboxPath = "/bin/busybox";

    /// <summary>The file in each platform's layer that holds "os/arch[/variant]".</summary>
    public const string PlatformMarkerPath = "/etc/vddkbuild-platform";

    /// <summary>The commands linked to busybox in /usr/bin.</summary>
    public static readonly IReadOnlyList<string> Commands = ["cat", "cp", "id", "ls", "readlink", "sh", "test"];

    public static readonly IReadOnlyList<StandInPlatform> Platforms =
    [
        new("linux", "amd64", null),
        new("linux", "arm64", "v8"),
    ];

    private const string IndexMediaType = "application/vnd.oci.image.index.v1+json";
    private const string ManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    private const string ConfigMediaType = "application/vnd.oci.image.config.v1+json";
    private const string LayerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip";
    private const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    private const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Fixed so the layer, config and manifests are byte-identical on every run.</summary>
    private static readonly DateTimeOffset FixedTime = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Writes an OCI image layout into <paramref name="directory"/> (created if needed) whose index.json names the index <paramref name="tag"/>.</summary>
    public static StandInBaseImageInfo WriteOciLayout(string directory, string tag = DefaultTag, string busyboxPath = DefaultBusyboxPath) =>
        WriteOciLayout(directory, Platforms, [], tag, busyboxPath);

    /// <summary>
    /// The same layout for <paramref name="platforms"/> only, each layer also holding <paramref name="payload"/> (after
    /// the UBI-like tree, with the folders they need): a base of a real base's size for the benchmark, say. With the
    /// default platforms and no payload, the same bytes as the overload above.
    /// </summary>
    public static StandInBaseImageInfo WriteOciLayout(
        string directory, IReadOnlyList<StandInPlatform> platforms, IReadOnlyList<StandInFile> payload,
        string tag = DefaultTag, string busyboxPath = DefaultBusyboxPath)
    {
        ArgumentNullException.ThrowIfNull(platforms);
        ArgumentNullException.ThrowIfNull(payload);
        if (!File.Exists(busyboxPath))
        {
            throw new FileNotFoundException($"'{busyboxPath}' is missing; install Debian's busybox-static (./build.sh deps).", busyboxPath);
        }
        var busybox = File.ReadAllBytes(busyboxPath);
        Directory.CreateDirectory(Path.Combine(directory, "blobs", "sha256"));

        var manifests = new JsonArray();
        var manifestDigests = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var platform in platforms)
        {
            var (layer, diffId) = BuildLayer(busybox, platform, payload);
            var layerDigest = WriteBlob(directory, layer);
            var config = Json(BuildConfig(platform, diffId));
            var configDigest = WriteBlob(directory, config);
            var manifest = Json(new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = ManifestMediaType,
                ["config"] = Descriptor(ConfigMediaType, configDigest, config.Length),
                ["layers"] = new JsonArray(Descriptor(LayerMediaType, layerDigest, layer.Length)),
            });
            var manifestDigest = WriteBlob(directory, manifest);
            manifestDigests[platform.ToString()] = manifestDigest;
            var descriptor = Descriptor(ManifestMediaType, manifestDigest, manifest.Length);
            var platformJson = new JsonObject { ["architecture"] = platform.Architecture, ["os"] = platform.OS };
            if (platform.Variant is not null)
            {
                platformJson["variant"] = platform.Variant;
            }
            descriptor["platform"] = platformJson;
            manifests.Add(descriptor);
        }

        var index = Json(new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = IndexMediaType, ["manifests"] = manifests });
        var indexDigest = WriteBlob(directory, index);
        var top = Descriptor(IndexMediaType, indexDigest, index.Length);
        top["annotations"] = new JsonObject { [RefNameAnnotation] = tag };
        WriteFileAtomically(Path.Combine(directory, "oci-layout"), Json(new JsonObject { ["imageLayoutVersion"] = "1.0.0" }));
        WriteFileAtomically(Path.Combine(directory, "index.json"), Json(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = IndexMediaType,
            ["manifests"] = new JsonArray(top),
        }));
        return new StandInBaseImageInfo(Path.GetFullPath(directory), tag, indexDigest, manifestDigests);
    }

    /// <summary>Writes the same image as an OCI archive (a tar of the layout, what `oci-archive:FILE` reads), atomically.</summary>
    public static StandInBaseImageInfo WriteOciArchive(string file, string tag = DefaultTag, string busyboxPath = DefaultBusyboxPath)
    {
        var layout = Directory.CreateTempSubdirectory("vddkbuild-standin-");
        var temp = file + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            var info = WriteOciLayout(layout.FullName, tag, busyboxPath);
            using (var output = File.Create(temp))
            using (var tar = new TarWriter(output, TarEntryFormat.Ustar, leaveOpen: false))
            {
                foreach (var path in Directory.EnumerateFiles(layout.FullName, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    var entry = new UstarTarEntry(TarEntryType.RegularFile, Path.GetRelativePath(layout.FullName, path))
                    {
                        ModificationTime = FixedTime,
                        Mode = (UnixFileMode)0b110_100_100,
                        DataStream = File.OpenRead(path),
                    };
                    tar.WriteEntry(entry);
                    entry.DataStream.Dispose();
                }
            }
            File.Move(temp, file, overwrite: true);
            return info with { Location = Path.GetFullPath(file) };
        }
        finally
        {
            File.Delete(temp);
            layout.Delete(recursive: true);
        }
    }

    private static (byte[] Layer, string DiffId) BuildLayer(byte[] busybox, StandInPlatform platform, IReadOnlyList<StandInFile> payload)
    {
        var tarBytes = new MemoryStream();
        using (var tar = new TarWriter(tarBytes, TarEntryFormat.Ustar, leaveOpen: true))
        {
            // Sorted by path, parents before children; the payload, if any, after them.
            AddDirectoryOrLink(tar, "bin", link: "usr/bin");
            AddDirectoryOrLink(tar, "etc/");
            AddFile(tar, "etc/group", "root:x:0:\ndefault:x:1001:\n");
            AddFile(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndefault:x:1001:0:Default Application User:/opt/app-root/src:/sbin/nologin\n");
            AddFile(tar, PlatformMarkerPath.TrimStart('/'), platform + "\n");
            AddDirectoryOrLink(tar, "lib64", link: "usr/lib64");
            AddDirectoryOrLink(tar, "opt/");
            AddDirectoryOrLink(tar, "root/", mode: 0b101_101_000);
            AddDirectoryOrLink(tar, "sbin", link: "usr/sbin");
            AddDirectoryOrLink(tar, "tmp/", mode: (int)(UnixFileMode.StickyBit | (UnixFileMode)0b111_111_111));
            AddDirectoryOrLink(tar, "usr/");
            AddDirectoryOrLink(tar, "usr/bin/");
            AddFile(tar, "usr/bin/busybox", busybox, 0b111_101_101);
            foreach (var command in Commands.Order(StringComparer.Ordinal))
            {
                AddDirectoryOrLink(tar, "usr/bin/" + command, link: "busybox");
            }
            AddDirectoryOrLink(tar, "usr/lib64/");
            AddDirectoryOrLink(tar, "usr/sbin/");
            AddPayload(tar, payload);
        }
        var uncompressed = tarBytes.ToArray();
        var diffId = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(uncompressed));
        var gzipped = new MemoryStream();
        using (var gzip = new GZipStream(gzipped, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(uncompressed);
        }
        return (gzipped.ToArray(), diffId);
    }

    /// <summary>Adds the payload's files in their order, each after the folders it needs that the tree lacks so far.</summary>
    private static void AddPayload(TarWriter tar, IReadOnlyList<StandInFile> payload)
    {
        var folders = new HashSet<string>(["etc", "opt", "root", "tmp", "usr", "usr/bin", "usr/lib64", "usr/sbin"], StringComparer.Ordinal);
        foreach (var file in payload)
        {
            var path = file.Path.TrimStart('/');
            for (var slash = path.IndexOf('/'); slash > 0; slash = path.IndexOf('/', slash + 1))
            {
                if (folders.Add(path[..slash]))
                {
                    AddDirectoryOrLink(tar, path[..slash] + "/");
                }
            }
            AddFile(tar, path, file.Content, file.Mode);
        }
    }

    private static void AddDirectoryOrLink(TarWriter tar, string name, string? link = null, int mode = 0b111_101_101)
    {
        var entry = link is null
            ? new UstarTarEntry(TarEntryType.Directory, name) { Mode = (UnixFileMode)mode }
            : new UstarTarEntry(TarEntryType.SymbolicLink, name) { LinkName = link, Mode = (UnixFileMode)0b111_111_111 };
        Stamp(entry);
        tar.WriteEntry(entry);
    }

    private static void AddFile(TarWriter tar, string name, string content) => AddFile(tar, name, Encoding.UTF8.GetBytes(content), 0b110_100_100);

    private static void AddFile(TarWriter tar, string name, byte[] content, int mode)
    {
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)mode, DataStream = new MemoryStream(content) };
        Stamp(entry);
        tar.WriteEntry(entry);
    }

    private static void Stamp(UstarTarEntry entry)
    {
        entry.ModificationTime = FixedTime;
        entry.Uid = 0;
        entry.Gid = 0;
        entry.UserName = "root";
        entry.GroupName = "root";
    }

    private static JsonObject BuildConfig(StandInPlatform platform, string diffId)
    {
        var config = new JsonObject
        {
            ["created"] = FixedTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            ["architecture"] = platform.Architecture,
            ["os"] = platform.OS,
        };
        if (platform.Variant is not null)
        {
            config["variant"] = platform.Variant;
        }
        config["config"] = new JsonObject
        {
            ["Env"] = new JsonArray(DefaultPath, "container=oci"),
            ["Cmd"] = new JsonArray("/bin/sh"),
            ["Labels"] = new JsonObject
            {
                ["name"] = "vddkbuild-stand-in-base",
                ["summary"] = "busybox laid out like ubi-minimal, for tests without internet",
            },
        };
        config["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(diffId) };
        config["history"] = new JsonArray(new JsonObject
        {
            ["created"] = config["created"]!.GetValue<string>(),
            ["created_by"] = "VddkBuild stand-in base: Debian busybox-static, UBI-like layout",
        });
        return config;
    }

    private static JsonObject Descriptor(string mediaType, string digest, long size) =>
        new() { ["mediaType"] = mediaType, ["digest"] = digest, ["size"] = size };

    private static byte[] Json(JsonObject value) => Encoding.UTF8.GetBytes(value.ToJsonString(JsonWriting));

    /// <summary>Media types contain '+', which the default encoder writes as +; registries and tools expect it plain.</summary>
    private static readonly JsonSerializerOptions JsonWriting = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string WriteBlob(string layout, byte[] content)
    {
        var hex = Convert.ToHexStringLower(SHA256.HashData(content));
        WriteFileAtomically(Path.Combine(layout, "blobs", "sha256", hex), content);
        return "sha256:" + hex;
    }

    private static void WriteFileAtomically(string path, byte[] content)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        File.WriteAllBytes(temp, content);
        File.Move(temp, path, overwrite: true);
    }
}

/// <summary>A file added to the stand-in's layer: its path in the image, its bytes and its permission bits.</summary>
public sealed record StandInFile(string Path, byte[] Content, int Mode = 0b110_100_100);

/// <summary>A platform of the stand-in index; <see cref="ToString"/> gives "os/arch[/variant]".</summary>
public sealed record StandInPlatform(string OS, string Architecture, string? Variant)
{
    public override string ToString() => Variant is null ? $"{OS}/{Architecture}" : $"{OS}/{Architecture}/{Variant}";
}

/// <summary>Where the stand-in was written and the digests a test can compare against.</summary>
/// <param name="Location">The layout folder or the archive file.</param>
/// <param name="ManifestDigests">Per platform ("linux/amd64", "linux/arm64/v8"), the manifest digest.</param>
public sealed record StandInBaseImageInfo(string Location, string Tag, string IndexDigest, IReadOnlyDictionary<string, string> ManifestDigests)
{
    /// <summary>The reference for VddkBaseImage, skopeo and podman: <c>oci:DIR:tag</c> or <c>oci-archive:FILE:tag</c>.</summary>
    public string Reference => (Directory.Exists(Location) ? "oci:" : "oci-archive:") + Location + ":" + Tag;
}
