using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Faults;
using VddkBuild.TestSupport.Images;
using Xunit.Abstractions;
using static VddkBuild.TestSupport.Archives.VddkArchiveBuilder;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>One registry (with the base image) and a local base layout shared by the bad-input cases.</summary>
public sealed class BadInputFixture : IAsyncLifetime
{
    internal PushWorld World { get; private set; } = null!;

    public string LocalBase { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        World = await PushWorld.StartAsync(new SilentOutput());
        LocalBase = StandInBaseImage.WriteOciLayout(Path.Combine(World.Work, "local-base")).Reference;
    }

    public async Task DisposeAsync() => await World.DisposeAsync();

    private sealed class SilentOutput : ITestOutputHelper
    {
        public void WriteLine(string message) { }
        public void WriteLine(string format, params object[] args) { }
    }
}

/// <summary>
/// Bad inputs through PublishVddk (dotnet build, pushing to a real registry): each fails with its own code and
/// writes nothing - no output file, no layer, nothing in the registry under the target repository.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class BadInputTests(BadInputFixture fixture, ITestOutputHelper output) : IClassFixture<BadInputFixture>, IDisposable
{
    private const string ArchiveName = "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz";

    private readonly string _work = Directory.CreateTempSubdirectory("vddk-bad-").FullName;

    private PushWorld World => fixture.World;

    public void Dispose()
    {
        World.Proxy.Clear();
        Directory.Delete(_work, recursive: true);
    }

    private string Write(VddkArchiveBuilder builder, string name = ArchiveName)
    {
        var path = Path.Combine(_work, "in", name);
        builder.Write(path);
        return path;
    }

    private static VddkArchiveBuilder Vddk() => new VddkArchiveBuilder().AddMinimalVddk();

    private string SmallSample() => SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);

    private async Task<(BuildRun Run, SampleBuild Sample, string Repository)> PublishAsync(string archive, Dictionary<string, string>? overrides = null, bool baseFromRegistry = false)
    {
        var repository = "bad/" + Guid.NewGuid().ToString("N")[..8];
        var sample = new SampleBuild(Path.Combine(_work, "build"));
        var properties = new Dictionary<string, string>
        {
            ["VddkArchive"] = archive,
            ["VddkBaseImage"] = baseFromRegistry ? $"{World.Proxy.Authority}/{PushWorld.BaseRepository}:latest" : fixture.LocalBase,
            ["VddkRegistry"] = World.Proxy.Authority,
            ["VddkRepository"] = repository,
            ["VddkRegistryInsecure"] = "true",
        };
        foreach (var (key, value) in overrides ?? [])
        {
            properties[key] = value;
        }
        var run = await sample.RunAsync("PublishVddk", properties);
        output.WriteLine(run.ToString());
        return (run, sample, repository);
    }

    /// <summary>The build failed with exactly <paramref name="code"/>, and nothing was written locally or pushed.</summary>
    private void AssertFailedWithNothingWritten((BuildRun Run, SampleBuild Sample, string Repository) result, string code, bool layerMayExist = false)
    {
        var (run, sample, repository) = result;
        Assert.False(run.Succeeded, run.ToString());
        Assert.Equal([code], run.ErrorCodes);
        Assert.False(Directory.Exists(sample.OutputDirectory) && Directory.EnumerateFileSystemEntries(sample.OutputDirectory, "*", SearchOption.AllDirectories).Any(), "output written");
        var layers = Path.Combine(sample.IntermediateDirectory, "layers");
        var leftovers = Directory.Exists(layers) ? Directory.EnumerateFiles(layers).Where(f => layerMayExist ? f.EndsWith(".tmp", StringComparison.Ordinal) : true).ToList() : [];
        Assert.True(leftovers.Count == 0, "left in obj/: " + string.Join(", ", leftovers));
        var pushed = Path.Combine(World.Registry.StorageDirectory, "docker", "registry", "v2", "repositories", repository, "_manifests", "tags");
        Assert.False(Directory.Exists(pushed) && Directory.EnumerateDirectories(pushed).Any(), "a tag was pushed");
    }

    // ---------------------------------------------------------------- archives

    [Fact]
    public async Task Archive_entry_with_dot_dot_is_VDDK1007() =>
        AssertFailedWithNothingWritten(await PublishAsync(Write(Vddk().AddFile(Distrib("lib64/../../../etc/cron.d/evil"), "x"))), ErrorCodes.EntryEscapesTree);

    [Fact]
    public async Task Absolute_symlink_is_VDDK1008() =>
        AssertFailedWithNothingWritten(await PublishAsync(Write(Vddk().AddSymlink(Distrib("lib64/libevil.so"), "/etc/shadow"))), ErrorCodes.SymlinkEscapesTree);

    [Fact]
    public async Task Symlink_escaping_the_tree_is_VDDK1008() =>
        AssertFailedWithNothingWritten(await PublishAsync(Write(Vddk().AddSymlink(Distrib("lib64/libevil.so"), "../../../etc/passwd"))), ErrorCodes.SymlinkEscapesTree);

    [Fact]
    public async Task Hardlink_outside_the_tree_is_VDDK1009() =>
        AssertFailedWithNothingWritten(await PublishAsync(Write(Vddk().AddHardlink(Distrib("lib64/libevil.so"), "etc/passwd"))), ErrorCodes.HardlinkInvalid);

    [Fact]
    public async Task Device_entry_is_VDDK1010() =>
        AssertFailedWithNothingWritten(await PublishAsync(Write(Vddk().AddDevice(Distrib("lib64/sda")))), ErrorCodes.SpecialFileEntry);

    [Fact]
    public async Task Truncated_gzip_is_VDDK1003()
    {
        var archive = SmallSample();
        ArchiveMutations.TruncateTo(archive, 0.6);
        AssertFailedWithNothingWritten(await PublishAsync(archive), ErrorCodes.ArchiveCorrupt);
    }

    [Fact]
    public async Task Gzip_with_a_corrupt_checksum_is_VDDK1003()
    {
        var archive = SmallSample();
        ArchiveMutations.CorruptGzipTrailerCrc(archive);
        AssertFailedWithNothingWritten(await PublishAsync(archive), ErrorCodes.ArchiveCorrupt);
    }

    [Fact]
    public async Task Entry_larger_than_VddkMaxEntrySize_is_VDDK1012()
    {
        var result = await PublishAsync(SmallSample(), new() { ["VddkMaxEntrySize"] = "100KiB" });
        AssertFailedWithNothingWritten(result, ErrorCodes.ArchiveTooLarge);
        Assert.Contains("VddkMaxEntrySize", result.Run.Output);
    }

    [Fact]
    public async Task Total_larger_than_VddkMaxTotalSize_is_VDDK1012()
    {
        var result = await PublishAsync(SmallSample(), new() { ["VddkMaxTotalSize"] = "1MB" });
        AssertFailedWithNothingWritten(result, ErrorCodes.ArchiveTooLarge);
        Assert.Contains("VddkMaxTotalSize", result.Run.Output);
    }

    [Fact]
    public async Task More_entries_than_VddkMaxEntryCount_is_VDDK1012()
    {
        var result = await PublishAsync(SmallSample(), new() { ["VddkMaxEntryCount"] = "10" });
        AssertFailedWithNothingWritten(result, ErrorCodes.ArchiveTooLarge);
        Assert.Contains("VddkMaxEntryCount", result.Run.Output);
    }

    [Fact]
    public async Task A_tar_bomb_of_zeros_is_stopped_by_the_default_limits_with_VDDK1012()
    {
        // One 5 GiB entry of zeros (over the default 4 GiB entry limit) in a 5 MB archive: the tar headers, then one
        // gzip member of 64 MiB of zeros repeated 80 times (concatenated members are one valid gzip stream).
        var headers = Path.Combine(_work, "headers.tar");
        using (var file = File.Create(headers))
        using (var tar = new TarWriter(file, TarEntryFormat.Ustar))
        {
            tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, Top + "/"));
            tar.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, Distrib("libvim-types.so")) { DataStream = new MemoryStream() });
        }
        ArchiveMutations.SetTarHeaderSize(headers, '0', 5L << 30);
        var path = Path.Combine(_work, "in", ArchiveName);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var archive = File.Create(path))
        {
            archive.Write(Gzip(File.ReadAllBytes(headers).AsSpan(0, 1024)));
            var zeros = Gzip(new byte[64 << 20]);
            for (var i = 0; i < 80; i++)
            {
                archive.Write(zeros);
            }
            archive.Write(Gzip(new byte[1024]));
        }
        Assert.True(new FileInfo(path).Length < 20_000_000);

        var result = await PublishAsync(path);

        AssertFailedWithNothingWritten(result, ErrorCodes.ArchiveTooLarge);
        Assert.Contains("VddkMaxEntrySize", result.Run.Output);
    }

    private static byte[] Gzip(ReadOnlySpan<byte> data)
    {
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(memory, CompressionLevel.Optimal, leaveOpen: true))
        {
            gzip.Write(data);
        }
        return memory.ToArray();
    }

    [Fact]
    public async Task Archive_of_another_product_is_VDDK1004() =>
        AssertFailedWithNothingWritten(await PublishAsync(Write(new VddkArchiveBuilder().AddDirectory("node-v20").AddFile("node-v20/bin/node", "x"))), ErrorCodes.NotAVddk);

    [Fact]
    public async Task The_windows_vddk_zip_is_VDDK1016()
    {
        var windows = new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }
            .AddDirectory(Top).AddDirectory(Distrib("bin")).AddDirectory(Distrib("lib"))
            .AddFile(Distrib("bin/vixDiskLib.dll"), FixtureContent.Bytes(8192, 1, "dll"))
            .AddFile(Distrib("lib/vixDiskLib.lib"), FixtureContent.Bytes(4096, 2, "lib"));
        var (run, sample, repository) = await PublishAsync(Write(windows, "VMware-vix-disklib-8.0.1-21562716.x86_64.zip"));
        AssertFailedWithNothingWritten((run, sample, repository), ErrorCodes.WindowsVddk);
        Assert.Contains("VDDK for Windows", run.Output);
    }

    [Fact]
    public async Task A_vddk_whose_library_is_built_for_aarch64_is_VDDK1017()
    {
        var arm = new VddkArchiveBuilder().AddMinimalVddk("9.0.0.0")
            .Remove(Distrib("lib64/libvixDiskLib.so.9.0.0.0"))
            .AddFile(Distrib("lib64/libvixDiskLib.so.9.0.0.0"), FixtureContent.ElfLibrary(183, 8192, 1), 0x1ED);
        var (run, sample, repository) = await PublishAsync(Write(arm, "VMware-vix-disklib-9.0.0.0.24742305.aarch64.tar.gz"));
        AssertFailedWithNothingWritten((run, sample, repository), ErrorCodes.VddkArchitectureNotX86_64);
        Assert.Contains("aarch64", run.Output);
    }

    [Fact]
    public async Task A_zip_holding_the_downloaded_archive_is_VDDK1004_saying_to_unpack_it()
    {
        var wrapped = new VddkArchiveBuilder { Compression = ArchiveCompression.Zip }.AddFile(ArchiveName, Vddk().ToBytes());
        var (run, sample, repository) = await PublishAsync(Write(wrapped, "vddk-download.zip"));
        AssertFailedWithNothingWritten((run, sample, repository), ErrorCodes.NotAVddk);
        Assert.Contains($"holds another archive, '{ArchiveName}'", run.Output);
    }

    [Fact]
    public async Task Broken_libvixDiskLib_chain_is_VDDK1006() =>
        AssertFailedWithNothingWritten(await PublishAsync(Write(Vddk().Remove(Distrib("lib64/libvixDiskLib.so.8.0.1")).AddFile(Distrib("lib64/libvixDiskLib.so.8.0.1.bak"), "x"))), ErrorCodes.VixDiskLibChainBroken);

    [Fact]
    public async Task A_macOS_made_archive_is_accepted_with_VDDK1901_and_its_metadata_is_not_in_the_image()
    {
        var builder = SampleVddkArchive.CreateBuilder(SampleVddkArchiveOptions.Small with { Format = TarEntryFormat.Pax, DocumentationPages = 3 });
        builder.MacMetadata = true;
        var (run, sample, repository) = await PublishAsync(Write(builder));

        Assert.True(run.Succeeded, run.ToString());
        Assert.Contains("warning VDDK1901", run.Output);
        var layer = Assert.Single(Directory.EnumerateFiles(Path.Combine(sample.IntermediateDirectory, "layers")));
        var names = new List<string>();
        using (var tar = new TarReader(new GZipStream(File.OpenRead(layer), CompressionMode.Decompress)))
        {
            while (tar.GetNextEntry() is { } entry)
            {
                names.Add(entry.Name);
                Assert.DoesNotContain("LIBARCHIVE", string.Join(",", (entry as PaxTarEntry)?.ExtendedAttributes.Keys ?? []));
            }
        }
        Assert.Contains(names, n => n.EndsWith("lib64/libvixDiskLib.so", StringComparison.Ordinal));
        Assert.DoesNotContain(names, n => Path.GetFileName(n.TrimEnd('/')).StartsWith("._", StringComparison.Ordinal) || n.Contains("__MACOSX", StringComparison.Ordinal));
        Assert.True(StoredImageCheck.Inspect(World.Registry.StorageDirectory, repository, "8.0.1").Exists);
    }

    // ---------------------------------------------------------------- properties

    [Fact]
    public async Task Missing_archive_path_is_VDDK1001() =>
        AssertFailedWithNothingWritten(await PublishAsync(Path.Combine(_work, "nowhere", ArchiveName)), ErrorCodes.ArchiveNotFound);

    [Theory]
    [InlineData("OpenShift-MTV/VDDK")]
    [InlineData("openshift-mtv/vddk:8.0.1")]
    public async Task Malformed_repository_is_VDDK3001(string repository) =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkRepository"] = repository }), ErrorCodes.ImageReferenceInvalid);

    [Theory]
    [InlineData("localhost:99999")]
    [InlineData("https://registry.example.com")]
    public async Task Malformed_registry_is_VDDK3001(string registry) =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkRegistry"] = registry }), ErrorCodes.ImageReferenceInvalid);

    [Fact]
    public async Task Malformed_base_image_reference_is_VDDK2001() =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkBaseImage"] = "Registry.Example.com/UBI:la test" }), ErrorCodes.BaseReferenceInvalid);

    [Theory]
    [InlineData(".hidden")]
    [InlineData("has space")]
    public async Task A_tag_the_registry_would_reject_is_VDDK3007_before_any_work(string tag) =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkImageTags"] = tag.Replace(";", "%3B", StringComparison.Ordinal) }), ErrorCodes.TagInvalid);

    [Fact]
    public async Task A_tag_longer_than_128_characters_is_VDDK3007() =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkImageTags"] = new string('a', 129) }), ErrorCodes.TagInvalid);

    [Fact]
    public async Task A_malformed_platform_is_VDDK2008() =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkPlatform"] = "amd64" }), ErrorCodes.PlatformInvalid);

    [Fact]
    public async Task A_platform_the_base_does_not_have_is_VDDK2003() =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkPlatform"] = "linux/s390x" }), ErrorCodes.PlatformNotFound);

    [Fact]
    public async Task A_CA_bundle_that_is_not_PEM_is_VDDK3008()
    {
        var bundle = Path.Combine(_work, "ca.crt");
        File.WriteAllBytes(bundle, RandomNumberGenerator.GetBytes(600));
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkRegistryCaBundle"] = bundle }), ErrorCodes.CaBundleInvalid);
    }

    [Fact]
    public async Task A_PEM_file_without_a_certificate_is_VDDK3008()
    {
        var bundle = Path.Combine(_work, "key.pem");
        using var key = ECDsa.Create();
        File.WriteAllText(bundle, key.ExportPkcs8PrivateKeyPem());
        var result = await PublishAsync(SmallSample(), new() { ["VddkRegistryCaBundle"] = bundle });
        AssertFailedWithNothingWritten(result, ErrorCodes.CaBundleInvalid);
        Assert.DoesNotContain("PRIVATE KEY-----\n", result.Run.Output);
    }

    [Fact]
    public async Task A_missing_CA_bundle_file_is_VDDK3008() =>
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkRegistryCaBundle"] = Path.Combine(_work, "missing.crt") }), ErrorCodes.CaBundleInvalid);

    // ---------------------------------------------------------------- registry answers

    private static RegistryFault Answer(int status, string contentType, string body, string? digestHeader = null) => RegistryFault.Custom($"HTTP {status} {contentType}", async (context, _) =>
    {
        if (context.Request.ContentLength > 0)
        {
            await context.Request.Body.CopyToAsync(Stream.Null);
        }
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        if (digestHeader is not null)
        {
            context.Response.Headers["Docker-Content-Digest"] = digestHeader;
        }
        await context.Response.WriteAsync(body);
    });

    [Fact]
    public async Task A_base_manifest_that_is_not_JSON_is_VDDK3010()
    {
        World.Proxy.Add("garbage", RequestMatch.ManifestGet, Answer(200, "application/vnd.oci.image.index.v1+json", "{\"manifests\": [ this is not json"), times: int.MaxValue);
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), baseFromRegistry: true), ErrorCodes.RegistryResponseInvalid);
    }

    [Fact]
    public async Task A_base_manifest_of_an_unsupported_media_type_is_VDDK2005()
    {
        World.Proxy.Add("schema1", RequestMatch.ManifestGet, Answer(200, "application/vnd.docker.distribution.manifest.v1+prettyjws", "{\"schemaVersion\":1,\"name\":\"base/ubi-minimal\",\"tag\":\"latest\",\"fsLayers\":[]}"), times: int.MaxValue);
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), baseFromRegistry: true), ErrorCodes.MediaTypeUnsupported);
    }

    [Fact]
    public async Task A_base_manifest_whose_content_does_not_match_the_requested_digest_is_VDDK3005()
    {
        var real = StoredImageCheck.Inspect(World.Registry.StorageDirectory, PushWorld.BaseRepository, "latest").ManifestDigest!;
        World.Proxy.Add("swapped", r => RequestMatch.ManifestGet(r) && r.Path.Value!.EndsWith(real, StringComparison.Ordinal),
            Answer(200, "application/vnd.oci.image.index.v1+json", "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}"), times: int.MaxValue);
        AssertFailedWithNothingWritten(await PublishAsync(SmallSample(), new() { ["VddkBaseImage"] = $"{World.Proxy.Authority}/{PushWorld.BaseRepository}@{real}" }), ErrorCodes.ManifestDigestMismatch);
    }

    [Fact]
    public async Task A_registry_that_stores_the_manifest_under_another_digest_is_VDDK3005_and_the_tag_is_not_reported()
    {
        var other = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("something else")));
        World.Proxy.Add("rewritten", RequestMatch.ManifestPut, Answer(201, "text/plain", string.Empty, other), times: int.MaxValue);
        var result = await PublishAsync(SmallSample());
        AssertFailedWithNothingWritten(result, ErrorCodes.ManifestDigestMismatch, layerMayExist: true);
        Assert.Contains(other, result.Run.Output);
        Assert.DoesNotContain("VddkImageDigest =", result.Run.Output);
    }
}
