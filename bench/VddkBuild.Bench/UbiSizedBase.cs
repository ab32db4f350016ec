using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace VddkBuild.Bench;

/// <summary>
/// A base the size of ubi-minimal (the product's default base): one gzip layer of about 39 MB (about 100 MB of tar,
/// shared-library-like random bytes and compressible text), busybox for cp and sh, laid out like UBI. Written as an
/// OCI layout for one linux/amd64 image, the same bytes on every run (fixed seed and times).
/// </summary>
internal static class UbiSizedBase
{
    private static readonly DateTimeOffset FixedTime = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static void WriteOciLayout(string directory, string busyboxPath = "/bin/busybox")
    {
        Directory.CreateDirectory(Path.Combine(directory, "blobs", "sha256"));
        var tar = LayerTar(File.ReadAllBytes(busyboxPath));
        byte[] gzip;
        using (var compressed = new MemoryStream())
        {
            using (var zip = new GZipStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                zip.Write(tar);
            }
            gzip = compressed.ToArray();
        }
        var layer = WriteBlob(directory, gzip);
        var config = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject { ["Env"] = new JsonArray("PATH=/usr/bin:/bin"), ["Cmd"] = new JsonArray("/bin/sh") },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar))) },
        }.ToJsonString());
        var configDigest = WriteBlob(directory, config);
        var manifest = Encoding.UTF8.GetBytes(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", configDigest, config.Length),
            ["layers"] = new JsonArray(Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer, gzip.Length)),
        }.ToJsonString());
        var manifestDigest = WriteBlob(directory, manifest);
        var top = Descriptor("application/vnd.oci.image.manifest.v1+json", manifestDigest, manifest.Length);
        top["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = "latest" };
        File.WriteAllText(Path.Combine(directory, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        File.WriteAllText(Path.Combine(directory, "index.json"), new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(top),
        }.ToJsonString());
    }

    private static byte[] LayerTar(byte[] busybox)
    {
        var random = new Random(39);
        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var dir in new[] { "usr", "usr/bin", "usr/lib64", "usr/share", "usr/share/doc", "etc", "opt", "tmp", "var" })
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir) { ModificationTime = FixedTime, Mode = (UnixFileMode)0x1ED });
            }
            foreach (var (link, target) in new[] { ("bin", "usr/bin"), ("lib64", "usr/lib64"), ("lib", "usr/lib"), ("sbin", "usr/sbin"),
                ("usr/bin/cp", "busybox"), ("usr/bin/sh", "busybox"), ("usr/bin/ls", "busybox"), ("usr/bin/readlink", "busybox") })
            {
                writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, link) { LinkName = target, ModificationTime = FixedTime });
            }
            AddFile(writer, "usr/bin/busybox", busybox, 0x1ED);
            AddFile(writer, "etc/passwd", Encoding.ASCII.GetBytes("root:x:0:0:root:/root:/bin/sh\n"), 0x1A4);
            // ~14 MB that gzip cannot shrink (code), ~86 MB of text it shrinks to about a quarter: ~39 MB of gzip in all.
            for (var i = 0; i < 14; i++)
            {
                var bytes = new byte[1_000_000];
                random.NextBytes(bytes);
                AddFile(writer, $"usr/lib64/lib{i}.so.1", bytes, 0x1ED);
            }
            var words = Enumerable.Range(0, 5000).Select(i => string.Concat(Enumerable.Repeat($"w{i}", 1 + random.Next(4)))).ToArray();
            for (var i = 0; i < 86; i++)
            {
                var text = new StringBuilder(1_000_100);
                while (text.Length < 1_000_000)
                {
                    text.Append(words[random.Next(words.Length)]).Append(' ');
                }
                AddFile(writer, $"usr/share/doc/f{i}.txt", Encoding.ASCII.GetBytes(text.ToString(0, 1_000_000)), 0x1A4);
            }
        }
        return tar.ToArray();
    }

    private static void AddFile(TarWriter writer, string name, byte[] content, int mode) =>
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content), ModificationTime = FixedTime, Mode = (UnixFileMode)mode });

    private static string WriteBlob(string directory, byte[] content)
    {
        var hex = Convert.ToHexStringLower(SHA256.HashData(content));
        File.WriteAllBytes(Path.Combine(directory, "blobs", "sha256", hex), content);
        return "sha256:" + hex;
    }

    private static JsonObject Descriptor(string mediaType, string digest, long size) =>
        new() { ["mediaType"] = mediaType, ["digest"] = digest, ["size"] = size };
}
