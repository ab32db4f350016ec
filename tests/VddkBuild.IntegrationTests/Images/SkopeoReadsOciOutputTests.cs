using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using VddkBuild.Archive;
using VddkBuild.Images;
using VddkBuild.Layers;
using VddkBuild.Oci;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Images;

/// <summary>skopeo (containers/image) as an independent reader of the OCI archives and layouts this project writes.</summary>
public sealed class SkopeoReadsOciOutputTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "vddkbuild-skopeo-" + Guid.NewGuid().ToString("N"));

    public SkopeoReadsOciOutputTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    [SkippableFact]
    public async Task Skopeo_inspects_and_copies_the_oci_archive_and_layout_with_matching_digests()
    {
        var skopeo = Requires.Tool("skopeo");
        var (image, baseSource) = await BuildImageAsync();
        var archive = Path.Combine(_root, "vddk.tar");
        var layout = Path.Combine(_root, "layout");
        await OciArchiveWriter.WriteAsync(image, baseSource, archive, ["8.0.1", "latest"], CancellationToken.None);
        await OciLayoutWriter.WriteAsync(image, baseSource, layout, ["latest"], CancellationToken.None);

        foreach (var reference in new[] { $"oci-archive:{archive}:8.0.1", $"oci:{layout}:latest" })
        {
            var inspect = JsonNode.Parse(Run(skopeo, "inspect", reference))!;
            Assert.Equal(image.Digest.Value, (string?)inspect["Digest"]);
            Assert.Equal(image.Layers.Select(l => l.Digest.Value), inspect["Layers"]!.AsArray().Select(n => (string)n!));
            Assert.Equal("8.0.1", (string?)inspect["Labels"]!["org.opencontainers.image.version"]);
            Assert.Equal("amd64", (string?)inspect["Architecture"]);

            var config = JsonNode.Parse(Run(skopeo, "inspect", "--config", reference))!;
            Assert.Equal("1001", (string?)config["config"]!["User"]);
        }

        // copy reads every blob and checks each digest against the manifest.
        var copy = Path.Combine(_root, "copy");
        Run(skopeo, "--insecure-policy", "copy", "--quiet", $"oci-archive:{archive}:latest", $"oci:{copy}:copied");
        Assert.True(File.Exists(Path.Combine(copy, "blobs", "sha256", image.VddkLayer.Descriptor.Digest.Hex)));
    }

    [SkippableFact]
    public async Task An_oci_archive_written_by_skopeo_is_a_usable_base()
    {
        var skopeo = Requires.Tool("skopeo");
        var (image, baseSource) = await BuildImageAsync();
        var layout = Path.Combine(_root, "layout");
        await OciLayoutWriter.WriteAsync(image, baseSource, layout, ["latest"], CancellationToken.None);
        var archive = Path.Combine(_root, "by-skopeo.tar");
        Run(skopeo, "--insecure-policy", "copy", "--quiet", $"oci:{layout}:latest", $"oci-archive:{archive}:base");

        await using var source = new OciArchiveSource(archive, "base");
        var resolved = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        Assert.Equal(image.Layers.Count, resolved.Layers.Count);
        foreach (var layer in resolved.Layers)
        {
            await using var stream = await source.OpenBlobAsync(layer, CancellationToken.None);
            await stream.CopyToAsync(Stream.Null);
        }
    }

    private async Task<(BuiltImage Image, IImageSource Base)> BuildImageAsync()
    {
        var baseDir = Path.Combine(_root, "base");
        WriteBaseLayout(baseDir);
        var source = new OciLayoutSource(baseDir);
        var baseImage = await source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);

        var time = new DateTimeOffset(2023, 3, 29, 10, 15, 42, TimeSpan.Zero);
        const string R = ImageSettings.TreeRoot;
        await using var writer = new LayerWriter(Path.Combine(_root, "layers"));
        await writer.WriteEntryAsync(new VddkEntry(R, VddkEntryKind.Directory, 0x1ED, time, 0, null), null, CancellationToken.None);
        await writer.WriteEntryAsync(new VddkEntry($"{R}/lib64", VddkEntryKind.Directory, 0x1ED, time, 0, null), null, CancellationToken.None);
        var lib = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("not really ELF ", 1000)));
        await writer.WriteEntryAsync(new VddkEntry($"{R}/lib64/libvixDiskLib.so.8.0.1", VddkEntryKind.File, 0x1ED, time, lib.Length, null), new MemoryStream(lib), CancellationToken.None);
        await writer.WriteEntryAsync(new VddkEntry($"{R}/lib64/libvixDiskLib.so.8", VddkEntryKind.Symlink, 0x1FF, time, 0, "libvixDiskLib.so.8.0.1"), null, CancellationToken.None);
        var layer = await writer.CompleteAsync(CancellationToken.None);

        var image = ImageBuilder.Build(baseImage, layer, new ImageSettings { VddkVersion = "8.0.1", VddkBuildNumber = "21562716", Created = time });
        return (image, source);
    }

    /// <summary>A one-layer stand-in base image written blob by blob.</summary>
    private static void WriteBaseLayout(string dir)
    {
        Directory.CreateDirectory(Path.Combine(dir, "blobs", "sha256"));
        File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        var tar = new MemoryStream();
        using (var w = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            w.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "etc/os-release") { DataStream = new MemoryStream("NAME=base\n"u8.ToArray()) });
        }
        var gz = new MemoryStream();
        using (var g = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            g.Write(tar.ToArray());
        }
        var layer = Blob(dir, gz.ToArray());
        var config = Blob(dir, Encoding.UTF8.GetBytes(
            $"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Cmd\":[\"/bin/sh\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"{Digest.Compute(tar.ToArray())}\"]}}}}"));
        var manifest = Blob(dir, Encoding.UTF8.GetBytes(
            $"{{\"schemaVersion\":2,\"mediaType\":\"{MediaTypes.OciManifest}\",\"config\":{{\"mediaType\":\"{MediaTypes.OciConfig}\",\"digest\":\"{config.Digest}\",\"size\":{config.Size}}},"
            + $"\"layers\":[{{\"mediaType\":\"{MediaTypes.OciLayerGzip}\",\"digest\":\"{layer.Digest}\",\"size\":{layer.Size}}}]}}"));
        File.WriteAllText(Path.Combine(dir, "index.json"),
            $"{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"{MediaTypes.OciManifest}\",\"digest\":\"{manifest.Digest}\",\"size\":{manifest.Size}}}]}}");
    }

    private static (Digest Digest, long Size) Blob(string dir, byte[] bytes)
    {
        var digest = Digest.Compute(bytes);
        File.WriteAllBytes(Path.Combine(dir, "blobs", "sha256", digest.Hex), bytes);
        return (digest, bytes.Length);
    }

    private static string Run(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}");
        return stdout;
    }
}
