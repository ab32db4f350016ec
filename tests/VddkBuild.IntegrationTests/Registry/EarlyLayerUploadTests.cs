using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Publishing;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// The VDDK layer sent while the archive is checked (<see cref="EarlyLayerUpload"/>), against a real docker-registry
/// behind a recording proxy: the bytes go once, the blob exists only after the pusher commits it, and an archive that
/// is refused or broken leaves no blob and no open upload session.
/// </summary>
public sealed class EarlyLayerUploadTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private sealed record World(RegistryTestContext Context, DockerRegistryProcess Registry, CountingProxy Proxy, RegistrySession Session, OciLayoutSource Base, ImageReference Target) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Base.DisposeAsync();
            await Context.DisposeAsync();
        }

        public VddkImageRequest Request(string archive, EarlyLayerUpload early) =>
            new() { ArchivePath = archive, BaseSource = Base, WorkDirectory = Path.Combine(Context.Directory, "obj"), LayerUpload = early };

        public EarlyLayerUpload Early(PushOptions? options = null) => new(Session, Target, options ?? new PushOptions(), Context.Log, None);

        /// <summary>Settles the session's first-request costs (HTTP or HTTPS, auth) before the test's timing matters.</summary>
        public Task WarmUpAsync() => Session.GetClient(Target).BlobExistsAsync(Target.Repository, Digest.Parse("sha256:" + new string('0', 64)), RegistryPurpose.Push, None);

        /// <summary>Asks the registry itself (not through the proxy, not with the project's client) whether it has the blob.</summary>
        public async Task<HttpStatusCode> HeadBlobAsync(string digest)
        {
            using var client = new HttpClient();
            using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(Registry.BaseUri, $"/v2/{Target.Repository}/blobs/{digest}")));
            return response.StatusCode;
        }
    }

    private async Task<World> StartAsync()
    {
        var context = new RegistryTestContext(output);
        try
        {
            var registry = context.Own(await DockerRegistryProcess.StartAsync());
            var proxy = context.Own(await CountingProxy.StartAsync(registry.BaseUri));
            var session = context.Session(RegistryTestContext.Insecure(proxy.Authority));
            var baseSource = new OciLayoutSource(StandInBaseImage.WriteOciLayout(Path.Combine(context.Directory, "base")).Location, "latest");
            return new World(context, registry, proxy, session, baseSource, ImageReference.ForRepository(proxy.Authority, "early/vddk"));
        }
        catch
        {
            await context.DisposeAsync();
            throw;
        }
    }

    private static string FileDigest(string path) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [SkippableFact]
    public async Task The_layer_sent_while_the_archive_is_checked_becomes_its_blob_once_the_checks_passed_and_the_pusher_collects_it()
    {
        await using var world = await StartAsync();
        var archive = SampleVddkArchive.WriteTo(world.Context.Directory, SampleVddkArchiveOptions.Small);
        var digest = FileDigest(archive);
        await using var early = world.Early();

        var built = await VddkImagePipeline.BuildAsync(world.Request(archive, early), world.Context.Log, None);
        Assert.Equal(digest, built.Image.VddkLayer.Descriptor.Digest.Value); // the archive is the layer

        var pushed = await new ImagePusher(world.Session).PushAsync(built.Image, world.Base, world.Target, ["1"], new PushOptions(), world.Context.Log, None, early);

        Assert.Equal(HttpStatusCode.OK, await world.HeadBlobAsync(digest));
        Assert.Contains(pushed.Blobs, b => b.Blob.Digest.Value == digest && b.Outcome == BlobOutcome.Uploaded && b.BytesSent == new FileInfo(archive).Length);
        // Sent once: one PATCH with the whole file, then one commit without a body, after it; no second copy.
        var requests = world.Proxy.Requests.ToList();
        var layerRequests = requests.Where(r => r.SentBlobData && r.ContentLength == new FileInfo(archive).Length).ToList();
        Assert.Single(layerRequests);
        Assert.Equal("PATCH", layerRequests[0].Method);
        var commits = requests.Where(r => r.Method == "PUT" && r.Kind == RegistryRequestKind.Upload && r.Digest == digest).ToList();
        var commit = Assert.Single(commits);
        Assert.Equal(201, commit.Status);
        Assert.True(commit.ContentLength is null or 0, "the commit carries no body");
        Assert.True(requests.IndexOf(commit) > requests.IndexOf(layerRequests[0]), "committed after the PATCH");
        // The manifest, last, names it.
        Assert.True(requests.FindIndex(r => r.Kind == RegistryRequestKind.Manifest && r.Method == "PUT") > requests.IndexOf(commit));
        // What the registry serves is the archive, byte for byte.
        await using var blob = await world.Session.GetClient(world.Target).OpenBlobAsync(world.Target.Repository, built.Image.VddkLayer.Descriptor, None);
        Assert.Equal(digest, "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(blob)));
        Assert.Contains(world.Context.Log.Lines, l => l.Message.Contains("sent while the archive was being checked", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task An_archive_refused_at_its_end_leaves_no_blob_and_no_open_session_and_the_written_layer_is_pushed()
    {
        await using var world = await StartAsync();
        // Two gzip members: everything looks right until the trailer, which covers only the second half.
        var tar = SampleVddkArchive.WriteTo(Path.Combine(world.Context.Directory, "tar"), SampleVddkArchiveOptions.Small with { Compression = ArchiveCompression.None, TargetUnpackedBytes = 40_000_000 });
        var archive = Path.Combine(world.Context.Directory, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        var bytes = await File.ReadAllBytesAsync(tar);
        await using (var file = File.Create(archive))
        {
            foreach (var part in new[] { bytes.AsMemory(0, bytes.Length / 2), bytes.AsMemory(bytes.Length / 2) })
            {
                await using var member = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true);
                await member.WriteAsync(part);
            }
        }
        var archiveDigest = FileDigest(archive);
        await world.WarmUpAsync();

        PushResult pushed;
        BuiltImage image;
        await using (var early = world.Early())
        {
            var built = await VddkImagePipeline.BuildAsync(world.Request(archive, early), world.Context.Log, None);
            image = built.Image;
            Assert.NotEqual(archiveDigest, image.VddkLayer.Descriptor.Digest.Value); // written, not the archive
            pushed = await new ImagePusher(world.Session).PushAsync(image, world.Base, world.Target, ["1"], new PushOptions(), world.Context.Log, None, early);
        }

        Assert.Equal(HttpStatusCode.NotFound, await world.HeadBlobAsync(archiveDigest));
        Assert.Equal(HttpStatusCode.OK, await world.HeadBlobAsync(image.VddkLayer.Descriptor.Digest.Value));
        Assert.Contains(pushed.Blobs, b => b.Blob.Digest == image.VddkLayer.Descriptor.Digest && b.Outcome == BlobOutcome.Uploaded);
        AssertEveryEarlySessionWasClosed(world.Proxy);
    }

    [SkippableFact]
    public async Task A_broken_archive_fails_with_its_own_error_and_leaves_no_blob_and_no_open_session()
    {
        await using var world = await StartAsync();
        // Large enough that the upload session is open well before the reading reaches the damage.
        var archive = SampleVddkArchive.WriteTo(world.Context.Directory, SampleVddkArchiveOptions.Small with { TargetUnpackedBytes = 40_000_000 });
        ArchiveMutations.CorruptGzipTrailerCrc(archive);
        var digest = FileDigest(archive);
        await world.WarmUpAsync();

        await using (var early = world.Early())
        {
            var error = await Assert.ThrowsAsync<VddkException>(() => VddkImagePipeline.BuildAsync(world.Request(archive, early), world.Context.Log, None));
            Assert.Equal(ErrorCodes.ArchiveCorrupt, error.Code);
        }

        Assert.Equal(HttpStatusCode.NotFound, await world.HeadBlobAsync(digest));
        AssertEveryEarlySessionWasClosed(world.Proxy);
        Assert.DoesNotContain(world.Proxy.Requests, r => r.Kind == RegistryRequestKind.Manifest && r.Method == "PUT");
    }

    [SkippableFact]
    public async Task A_base_the_image_cannot_be_built_on_leaves_no_blob_of_the_layer_sent_early()
    {
        await using var world = await StartAsync();
        var archive = SampleVddkArchive.WriteTo(world.Context.Directory, SampleVddkArchiveOptions.Small);
        var digest = FileDigest(archive);
        await using (var early = world.Early())
        {
            // The base resolves once the layer's upload session is open, but its config lists one diff_id fewer
            // than its manifest has layers.
            async Task SessionOpened()
            {
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (!world.Proxy.Requests.Any(r => r.Method == "POST" && r.Kind == RegistryRequestKind.Upload && r.Status == 202) && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(10);
                }
            }
            await using var broken = new ConfigEditingSource(world.Base, SessionOpened, config => config["rootfs"]!["diff_ids"]!.AsArray().RemoveAt(0));
            var request = world.Request(archive, early) with { BaseSource = broken };
            var error = await Assert.ThrowsAsync<VddkException>(() => VddkImagePipeline.BuildAsync(request, world.Context.Log, None));
            Assert.Equal(ErrorCodes.ImageLayoutInvalid, error.Code);
        }
        Assert.Equal(HttpStatusCode.NotFound, await world.HeadBlobAsync(digest));
        AssertEveryEarlySessionWasClosed(world.Proxy);
        Assert.DoesNotContain(world.Proxy.Requests, r => r.Kind == RegistryRequestKind.Upload && r.Method == "PUT");
    }

    /// <summary>A base source whose config is edited on the way (the blobs are the inner source's).</summary>
    private sealed class ConfigEditingSource(IImageSource inner, Func<Task> before, Action<System.Text.Json.Nodes.JsonObject> edit) : IImageSource
    {
        public string DisplayName => inner.DisplayName;

        public async Task<SourceImage> ResolveAsync(Platform platform, CancellationToken cancellationToken)
        {
            await before();
            var image = await inner.ResolveAsync(platform, cancellationToken);
            var config = System.Text.Json.Nodes.JsonNode.Parse(image.ConfigBytes)!.AsObject();
            edit(config);
            return image with { ConfigBytes = System.Text.Encoding.UTF8.GetBytes(config.ToJsonString()) };
        }

        public Task<Stream> OpenBlobAsync(Descriptor descriptor, CancellationToken cancellationToken) => inner.OpenBlobAsync(descriptor, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [SkippableFact]
    public async Task A_build_cancelled_while_the_upload_session_is_being_opened_leaves_no_session_open()
    {
        await using var world = await StartAsync();
        var archive = SampleVddkArchive.WriteTo(world.Context.Directory, SampleVddkArchiveOptions.Small with { TargetUnpackedBytes = 40_000_000 });
        using var cancel = new CancellationTokenSource();
        // The registry opens the session, then the build is cancelled before the answer arrives.
        world.Proxy.Fault = http => EarlyBaseCopyTests.OpenThenCancelAsync(http, world.Registry.BaseUri, cancel);

        await using (var early = new EarlyLayerUpload(world.Session, world.Target, new PushOptions(), world.Context.Log, cancel.Token))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VddkImagePipeline.BuildAsync(world.Request(archive, early), world.Context.Log, cancel.Token));
        }

        Assert.True(cancel.IsCancellationRequested, "a session should have been opened");
        Assert.Empty(EarlyBaseCopyTests.OpenUploads(world.Registry, world.Target.Repository));
    }

    [SkippableFact]
    public async Task A_registry_that_refuses_the_early_PATCH_gets_the_layer_the_ordinary_way()
    {
        await using var world = await StartAsync();
        world.Proxy.Fault = async http =>
        {
            if (http.Request.Method != "PATCH")
            {
                return false;
            }
            http.Response.StatusCode = 405;
            await http.Response.WriteAsync("{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"no chunks here\"}]}");
            return true;
        };
        var archive = SampleVddkArchive.WriteTo(world.Context.Directory, SampleVddkArchiveOptions.Small);
        var digest = FileDigest(archive);

        await using var early = world.Early();
        var built = await VddkImagePipeline.BuildAsync(world.Request(archive, early), world.Context.Log, None);
        var pushed = await new ImagePusher(world.Session).PushAsync(built.Image, world.Base, world.Target, ["1"], new PushOptions(), world.Context.Log, None, early);

        Assert.Equal(HttpStatusCode.OK, await world.HeadBlobAsync(digest));
        Assert.Contains(pushed.Blobs, b => b.Blob.Digest.Value == digest && b.Outcome == BlobOutcome.Uploaded);
        Assert.Contains(world.Proxy.Requests, r => r.Method == "PUT" && r.Digest == digest && r.ContentLength == new FileInfo(archive).Length && r.Status == 201);
        Assert.Contains(world.Context.Log.Lines, l => l.Message.Contains("uploading it now", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task A_layer_already_in_the_repository_is_not_sent_again()
    {
        await using var world = await StartAsync();
        var archive = SampleVddkArchive.WriteTo(world.Context.Directory, SampleVddkArchiveOptions.Small);
        var digest = FileDigest(archive);
        await using (var first = world.Early())
        {
            var built = await VddkImagePipeline.BuildAsync(world.Request(archive, first), world.Context.Log, None);
            await new ImagePusher(world.Session).PushAsync(built.Image, world.Base, world.Target, ["1"], new PushOptions(), world.Context.Log, None, first);
        }
        // A fresh work folder (no layer cache): the archive is read again, but its digest is known beforehand.
        Directory.Delete(Path.Combine(world.Context.Directory, "obj"), recursive: true);
        world.Proxy.Reset();

        await using var early = world.Early();
        var again = await VddkImagePipeline.BuildAsync(world.Request(archive, early), world.Context.Log, None);
        var pushed = await new ImagePusher(world.Session).PushAsync(again.Image, world.Base, world.Target, ["2"], new PushOptions(), world.Context.Log, None, early);

        Assert.DoesNotContain(world.Proxy.Requests, r => r.SentBlobData);
        Assert.Contains(pushed.Blobs, b => b.Blob.Digest.Value == digest && b.Outcome == BlobOutcome.Skipped);
    }

    /// <summary>Every upload session the early upload opened was committed or deleted (none left to expire).</summary>
    private static void AssertEveryEarlySessionWasClosed(CountingProxy proxy)
    {
        var requests = proxy.Requests;
        var opened = requests.Count(r => r.Method == "POST" && r.Kind == RegistryRequestKind.Upload && !r.IsMount && r.Status == 202);
        var closed = requests.Count(r => r.Kind == RegistryRequestKind.Upload && ((r.Method == "PUT" && r.Status == 201) || r.Method == "DELETE"));
        Assert.True(opened > 0, "the early upload should have opened a session");
        Assert.Equal(opened, closed);
    }
}
