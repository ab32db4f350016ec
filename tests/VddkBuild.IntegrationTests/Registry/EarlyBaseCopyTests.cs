using System.Net;
using Microsoft.AspNetCore.Http;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Publishing;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// The base's layers copied from another registry while the archive is read (<see cref="EarlyBaseCopy"/>), with two
/// real docker-registry instances (the target behind a recording proxy): the blobs arrive and give the same image as
/// the ordinary copy, an archive refused partway leaves none of them in the target, and a target that refuses PATCH
/// gets them the ordinary way.
/// </summary>
public sealed class EarlyBaseCopyTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private sealed record World(
        RegistryTestContext Context, DockerRegistryProcess Target, CountingProxy Proxy, RegistrySession Session,
        SourceImage Base, RegistryImageSource BaseSource) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Context.DisposeAsync();

        public ImageReference Repository(string name) => ImageReference.ForRepository(Proxy.Authority, name);

        public VddkImageRequest Request(string archive, IBaseCopyStarter? copy, string work = "obj") =>
            new() { ArchivePath = archive, BaseSource = BaseSource, WorkDirectory = Path.Combine(Context.Directory, work), BaseCopy = copy };

        public EarlyBaseCopy Copy(ImageReference target, CancellationToken cancellationToken = default) => new(Session, target, new PushOptions(), Context.Log, cancellationToken);

        /// <summary>Asks the target registry itself (not through the proxy, not with the project's client) whether the repository has the blob.</summary>
        public async Task<HttpStatusCode> HeadBlobAsync(ImageReference repository, Digest digest)
        {
            using var client = new HttpClient();
            using var response = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(Target.BaseUri, $"/v2/{repository.Repository}/blobs/{digest}")));
            return response.StatusCode;
        }

        /// <summary>Whether the target registry's storage holds the blob's data at all (in any repository).</summary>
        public bool StoredInTarget(Digest digest) =>
            Directory.Exists(Path.Combine(Target.StorageDirectory, "docker", "registry", "v2", "blobs", "sha256", digest.Hex[..2], digest.Hex));
    }

    /// <summary>Target registry A behind a recording proxy; source registry B holding a base of two layers of a few MB.</summary>
    private async Task<World> StartAsync()
    {
        var context = new RegistryTestContext(output);
        try
        {
            var target = context.Own(await DockerRegistryProcess.StartAsync());
            var proxy = context.Own(await CountingProxy.StartAsync(target.BaseUri));
            var source = context.Own(await DockerRegistryProcess.StartAsync());
            var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, source.Authority));
            var layers = Path.Combine(context.Directory, "layers");
            var first = TestImages.CreateLayer(layers, "base-1", 6 * 1024 * 1024, 11);
            var second = TestImages.CreateLayer(layers, "base-2", 2 * 1024 * 1024, 12);
            var lower = TestImages.Build(TestImages.Scratch(Platform.LinuxAmd64), first, Platform.LinuxAmd64);
            var image = TestImages.Build(TestImages.AsSource(lower), second, Platform.LinuxAmd64);
            await new ImagePusher(session).PushAsync(image, new LocalBlobSource("base", [first, second]), ImageReference.ForRepository(source.Authority, "base/ubi"), ["1.0"], new PushOptions(), context.Log, None);
            var baseSource = new RegistryImageSource(session, ImageReference.Parse($"{source.Authority}/base/ubi:1.0"));
            var resolved = await baseSource.ResolveAsync(Platform.LinuxAmd64, None);
            return new World(context, target, proxy, session, resolved, baseSource);
        }
        catch
        {
            await context.DisposeAsync();
            throw;
        }
    }

    /// <summary>The PATCH requests that carried a whole base layer into the target.</summary>
    private static List<ProxiedRequest> BasePatches(World world) =>
        world.Proxy.Requests.Where(r => r.Method == "PATCH" && world.Base.Layers.Any(l => l.Size == r.ContentLength)).ToList();

    [SkippableFact]
    public async Task The_base_layers_copied_while_the_archive_is_read_arrive_and_give_the_image_the_ordinary_copy_gives()
    {
        await using var world = await StartAsync();
        var archive = SampleVddkArchive.WriteTo(world.Context.Directory, SampleVddkArchiveOptions.Small);
        var early = world.Repository("early/on");
        PushResult pushed;
        await using (var copy = world.Copy(early))
        {
            var built = await VddkImagePipeline.BuildAsync(world.Request(archive, copy), world.Context.Log, None);
            pushed = await new ImagePusher(world.Session).PushAsync(built.Image, world.BaseSource, early, ["1"], new PushOptions(), world.Context.Log, None, earlyBase: copy);
        }

        foreach (var layer in world.Base.Layers)
        {
            Assert.Equal(HttpStatusCode.OK, await world.HeadBlobAsync(early, layer.Digest));
            Assert.Contains(pushed.Blobs, b => b.Blob.Digest == layer.Digest && b.Outcome == BlobOutcome.Uploaded && b.BytesSent == layer.Size);
            // Sent once, in the session the copy opened, and committed without a body after the bytes.
            var requests = world.Proxy.Requests.ToList();
            var patch = Assert.Single(requests, r => r.Method == "PATCH" && r.ContentLength == layer.Size);
            var commit = Assert.Single(requests, r => r.Method == "PUT" && r.Kind == RegistryRequestKind.Upload && r.Digest == layer.Digest.Value);
            Assert.True(commit.ContentLength is null or 0, "the commit carries no body");
            Assert.True(requests.IndexOf(commit) > requests.IndexOf(patch), "committed after the PATCH");
        }
        Assert.Equal(2, world.Context.Log.Lines.Count(l => l.Message.Contains("copied while the archive was read", StringComparison.Ordinal)));

        // The same build without the early copy: the same image, byte for byte.
        var ordinary = world.Repository("early/off");
        var again = await VddkImagePipeline.BuildAsync(world.Request(archive, null, "obj-off"), world.Context.Log, None);
        var reference = await new ImagePusher(world.Session).PushAsync(again.Image, world.BaseSource, ordinary, ["1"], new PushOptions(), world.Context.Log, None);
        Assert.Equal(reference.Digest, pushed.Digest);
    }

    [SkippableFact]
    public async Task An_archive_refused_partway_leaves_none_of_the_base_layers_in_the_target()
    {
        await using var world = await StartAsync();
        // Large files first (the copy has long finished sending), the entry that escapes the tree last.
        var builder = new VddkArchiveBuilder().AddMinimalVddk();
        for (var i = 0; i < 6; i++)
        {
            builder.AddGeneratedFile(VddkArchiveBuilder.Distrib($"lib64/libbig{i}.so"), 10_000_000, (ulong)(100 + i));
        }
        builder.AddFile(VddkArchiveBuilder.Distrib("lib64/../../../etc/cron.d/evil"), "x");
        var archive = Path.Combine(world.Context.Directory, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        builder.Write(archive);
        var target = world.Repository("early/refused");

        await using (var copy = world.Copy(target))
        {
            // The archive's reading waits until the copy has sent every base layer, whatever the machine's speed.
            var request = world.Request(archive, copy) with { LayerUpload = new HoldReading(() => BasePatches(world).Count(p => p.Status == 202) == world.Base.Layers.Count, "the copy never sent every base layer") };
            var error = await Assert.ThrowsAsync<VddkException>(() => VddkImagePipeline.BuildAsync(request, world.Context.Log, None));
            Assert.Equal(ErrorCodes.EntryEscapesTree, error.Code);
        }

        // The copy had sent every base layer before the refusal (else this test proves nothing) ...
        Assert.Equal(world.Base.Layers.Count, BasePatches(world).Count(p => p.Status == 202));
        // ... and none of them became a blob: not in the repository, not in the registry's storage, no session left open.
        foreach (var layer in world.Base.Layers)
        {
            Assert.Equal(HttpStatusCode.NotFound, await world.HeadBlobAsync(target, layer.Digest));
            Assert.False(world.StoredInTarget(layer.Digest), $"{layer.Digest} is stored in the target registry");
        }
        Assert.DoesNotContain(world.Proxy.Requests, r => r.Method == "PUT");
        AssertEverySessionWasClosed(world.Proxy);
    }

    [SkippableFact]
    public async Task A_cancelled_build_leaves_none_of_the_base_layers_in_the_target()
    {
        await using var world = await StartAsync();
        var builder = new VddkArchiveBuilder().AddMinimalVddk();
        for (var i = 0; i < 8; i++)
        {
            builder.AddGeneratedFile(VddkArchiveBuilder.Distrib($"lib64/libbig{i}.so"), 10_000_000, (ulong)(200 + i));
        }
        var archive = Path.Combine(world.Context.Directory, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        builder.Write(archive);
        var target = world.Repository("early/cancelled");
        using var cancel = new CancellationTokenSource();
        // Cancelled (as Ctrl+C in MSBuild does) while the copy sends its first base layer.
        world.Proxy.Fault = http =>
        {
            if (http.Request.Method == "PATCH" && world.Base.Layers.Any(l => l.Size == http.Request.ContentLength))
            {
                cancel.Cancel();
            }
            return Task.FromResult(false);
        };

        await using (var copy = world.Copy(target, cancel.Token))
        {
            // The archive's reading waits for the cancellation, so that it always comes while the build runs.
            var request = world.Request(archive, copy) with { LayerUpload = new HoldReading(() => cancel.IsCancellationRequested, "the build was never cancelled") };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VddkImagePipeline.BuildAsync(request, world.Context.Log, cancel.Token));
        }

        Assert.NotEmpty(BasePatches(world));
        foreach (var layer in world.Base.Layers)
        {
            Assert.Equal(HttpStatusCode.NotFound, await world.HeadBlobAsync(target, layer.Digest));
            Assert.False(world.StoredInTarget(layer.Digest), $"{layer.Digest} is stored in the target registry");
        }
        AssertEverySessionWasClosed(world.Proxy);
    }

    [SkippableFact]
    public async Task A_build_cancelled_while_an_upload_session_is_being_opened_leaves_no_session_open()
    {
        await using var world = await StartAsync();
        var builder = new VddkArchiveBuilder().AddMinimalVddk();
        for (var i = 0; i < 8; i++)
        {
            builder.AddGeneratedFile(VddkArchiveBuilder.Distrib($"lib64/libbig{i}.so"), 10_000_000, (ulong)(300 + i));
        }
        var archive = Path.Combine(world.Context.Directory, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        builder.Write(archive);
        var target = world.Repository("early/opening");
        using var cancel = new CancellationTokenSource();
        // The registry opens the session, then the build is cancelled before the answer arrives.
        world.Proxy.Fault = http => OpenThenCancelAsync(http, world.Target.BaseUri, cancel);

        await using (var copy = world.Copy(target, cancel.Token))
        {
            // The archive's reading waits for the cancellation, so that it always comes while the build runs.
            var request = world.Request(archive, copy) with { LayerUpload = new HoldReading(() => cancel.IsCancellationRequested, "the build was never cancelled") };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => VddkImagePipeline.BuildAsync(request, world.Context.Log, cancel.Token));
        }

        Assert.True(cancel.IsCancellationRequested, "a session should have been opened");
        Assert.Empty(OpenUploads(world.Target, target.Repository));
    }

    /// <summary>
    /// Holds the archive's reading at its start (where an early layer upload would begin) until <paramref name="until"/>
    /// holds, so that what the test provokes in the base's copy happens while the build still runs, on a fast machine
    /// or a loaded one.
    /// </summary>
    private sealed class HoldReading(Func<bool> until, string never) : VddkBuild.Layers.ILayerUploadStarter
    {
        public void Begin(VddkBuild.IO.GrowingFile file, long length, Task<Digest?> expectedDigest) =>
            Assert.True(SpinWait.SpinUntil(until, TimeSpan.FromSeconds(60)), never);

        public void Abandon(string reason)
        {
        }

        public void Ready(Descriptor layer)
        {
        }
    }

    /// <summary>
    /// Answers an upload POST itself: opens the session at <paramref name="registry"/>, cancels the build, then
    /// returns the registry's answer. Other requests go through the proxy.
    /// </summary>
    internal static async Task<bool> OpenThenCancelAsync(HttpContext http, Uri registry, CancellationTokenSource cancel)
    {
        if (http.Request.Method != "POST" || CountingProxy.Classify(http.Request.Path.Value ?? "/") != RegistryRequestKind.Upload || http.Request.QueryString.Value?.Contains("mount=", StringComparison.Ordinal) == true)
        {
            return false;
        }
        using var client = new HttpClient();
        using var opened = await client.PostAsync(new Uri(registry, http.Request.Path.Value + http.Request.QueryString.Value), null);
        await cancel.CancelAsync();
        await Task.Delay(200);
        http.Response.StatusCode = (int)opened.StatusCode;
        http.Response.Headers.Location = opened.Headers.Location?.ToString();
        http.Response.Headers["Docker-Upload-UUID"] = opened.Headers.TryGetValues("Docker-Upload-UUID", out var uuid) ? uuid.First() : string.Empty;
        return true;
    }

    /// <summary>
    /// The upload sessions docker-registry holds open for <paramref name="repository"/>: folders of its storage's
    /// _uploads with a <c>startedat</c> file (a cancelled session keeps only its empty <c>hashstates</c> folder).
    /// </summary>
    internal static IReadOnlyList<string> OpenUploads(DockerRegistryProcess registry, string repository)
    {
        var uploads = Path.Combine(registry.StorageDirectory, "docker", "registry", "v2", "repositories", repository, "_uploads");
        return Directory.Exists(uploads) ? [.. Directory.GetDirectories(uploads).Where(d => File.Exists(Path.Combine(d, "startedat")))] : [];
    }

    [SkippableFact]
    public async Task A_target_that_refuses_PATCH_gets_the_base_layers_the_ordinary_way()
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
        var target = world.Repository("early/nopatch");

        PushResult pushed;
        await using (var copy = world.Copy(target))
        {
            var built = await VddkImagePipeline.BuildAsync(world.Request(archive, copy), world.Context.Log, None);
            pushed = await new ImagePusher(world.Session).PushAsync(built.Image, world.BaseSource, target, ["1"], new PushOptions(), world.Context.Log, None, earlyBase: copy);
        }

        foreach (var layer in world.Base.Layers)
        {
            Assert.Equal(HttpStatusCode.OK, await world.HeadBlobAsync(target, layer.Digest));
            Assert.Contains(pushed.Blobs, b => b.Blob.Digest == layer.Digest && b.Outcome == BlobOutcome.Uploaded);
            Assert.Contains(world.Proxy.Requests, r => r.Method == "PUT" && r.Digest == layer.Digest.Value && r.ContentLength == layer.Size && r.Status == 201);
        }
        Assert.Equal(2, world.Context.Log.Lines.Count(l => l.Message.Contains("copying it while the archive was read failed", StringComparison.Ordinal)));
        AssertEverySessionWasClosed(world.Proxy);
    }

    /// <summary>Every upload session opened in the target was committed or deleted (none left to expire).</summary>
    private static void AssertEverySessionWasClosed(CountingProxy proxy)
    {
        var requests = proxy.Requests;
        var opened = requests.Count(r => r.Method == "POST" && r.Kind == RegistryRequestKind.Upload && !r.IsMount && r.Status == 202);
        var closed = requests.Count(r => r.Kind == RegistryRequestKind.Upload && ((r.Method == "PUT" && r.Status == 201) || r.Method == "DELETE"));
        Assert.True(opened > 0, "the copy should have opened a session");
        Assert.Equal(opened, closed);
    }
}
