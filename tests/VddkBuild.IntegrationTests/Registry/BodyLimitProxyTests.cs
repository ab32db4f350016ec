using Microsoft.AspNetCore.Http;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Faults;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// A proxy in front of a real docker-registry that refuses request bodies over a limit by closing the connection,
/// as nginx does with <c>client_max_body_size</c> (413 and Connection: close before reading the body, so .NET mostly
/// sees a broken pipe or a reset while sending), or without any answer. The push gets the blob through in smaller
/// chunks; a single ordinary reset does not make chunks smaller; retries stay bounded.
/// </summary>
public sealed class BodyLimitProxyTests(ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>nginx's default client_max_body_size.</summary>
    private const long Limit = 1024 * 1024;

    private static bool OverLimit(HttpRequest request, long limit) => RequestMatch.BlobData(request) && request.ContentLength > limit;

    private static async Task<(RegistryTestContext Context, DockerRegistryProcess Registry, FaultProxy Proxy, RegistrySession Session)> StartAsync(ITestOutputHelper output)
    {
        var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var proxy = context.Own(await FaultProxy.StartAsync(registry.BaseUri));
        // The product's retry bound (5 attempts), with short delays.
        var session = context.Session(RegistryTestContext.Insecure(proxy.Authority, registry.Authority) with
        {
            Retry = new RetrySettings { BaseDelay = TimeSpan.FromMilliseconds(50) },
        });
        return (context, registry, proxy, session);
    }

    /// <summary>An image of one random layer of <paramref name="size"/> bytes, and a source serving it.</summary>
    private static (BuiltImage Image, LocalBlobSource Source) OneLayerImage(RegistryTestContext context, string name, int size, int seed)
    {
        var layer = TestImages.CreateLayer(Path.Combine(context.Directory, "layers"), name, size, seed);
        return (TestImages.Build(TestImages.Scratch(Platform.LinuxAmd64), layer, Platform.LinuxAmd64), new LocalBlobSource(name, [layer]));
    }

    private static async Task<byte[]> PulledLayerAsync(RegistrySession session, string authority, string repository, Descriptor layer)
    {
        var source = new RegistryImageSource(session, ImageReference.Parse($"{authority}/{repository}:1"));
        await using var stream = await source.OpenBlobAsync(layer, None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    [SkippableTheory]
    [InlineData("413-close")]
    [InlineData("drop")]
    public async Task ProxyClosingTheConnectionOnBodiesOverItsLimit_GetsTheBlobThroughInSmallerChunks(string refusal)
    {
        var (context, registry, proxy, session) = await StartAsync(output);
        await using var _ = context;
        var (image, blobs) = OneLayerImage(context, "big-" + refusal, 6 * 1024 * 1024, 31);
        var rule = proxy.Add(refusal, r => OverLimit(r, Limit), refusal == "drop" ? RegistryFault.DropWithoutAnswer() : RegistryFault.RefuseBodyAndClose(), times: int.MaxValue);

        var result = await new ImagePusher(session).PushAsync(image, blobs,
            RegistryTestContext.Reference(proxy.Authority, "vddk/limit"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.True(rule.Hits >= 1);
        // The layer went through in accepted chunks under the limit (a refused request is recorded as 413, or as 200 when only aborted).
        var accepted = proxy.Requests.Where(r => r.Method == "PATCH" && r.Status == 202).Select(r => r.ContentLength ?? 0).ToList();
        Assert.Equal(image.VddkLayer.Descriptor.Size, accepted.Sum());
        Assert.All(accepted, length => Assert.InRange(length, 1, Limit));
        Assert.Equal(await File.ReadAllBytesAsync(image.VddkLayer.FilePath), await PulledLayerAsync(session, registry.Authority, "vddk/limit", image.VddkLayer.Descriptor));
        // Found within the first retry: the second attempt asks before sending (Expect: 100-continue) or sees the same size refused again.
        Assert.True(context.Log.AllText.Split("retrying in").Length - 1 <= 1, context.Log.AllText);
    }

    [SkippableFact]
    public async Task OneOrdinaryResetMidUpload_IsRetried_WithoutSmallerChunks()
    {
        var (context, registry, proxy, session) = await StartAsync(output);
        await using var _ = context;
        var (image, blobs) = OneLayerImage(context, "big-one-reset", 6 * 1024 * 1024, 33);
        proxy.Add("reset", r => OverLimit(r, Limit), RegistryFault.ResetAfterRequestBytes(64 * 1024));

        var result = await new ImagePusher(session).PushAsync(image, blobs,
            RegistryTestContext.Reference(proxy.Authority, "vddk/one-reset"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.Single(proxy.Injected);
        Assert.DoesNotContain(proxy.Requests, r => r.Method == "PATCH");
        Assert.Contains(proxy.Requests, r => r.Method == "PUT" && r.ContentLength == image.VddkLayer.Descriptor.Size && r.Status == 201);
        Assert.Equal(await File.ReadAllBytesAsync(image.VddkLayer.FilePath), await PulledLayerAsync(session, registry.Authority, "vddk/one-reset", image.VddkLayer.Descriptor));
    }

    /// <summary>
    /// A proxy that does not take <c>Expect: 100-continue</c> (squid 2.x, lighttpd before 1.4.21, proxies set to refuse
    /// expectations) answers 417 Expectation Failed without reading the body. After one ordinary reset the upload asks
    /// first; the 417 must not fail the push: the body goes again without asking, and later bodies are not asked for.
    /// </summary>
    [SkippableFact]
    public async Task ProxyAnswering417ToExpectContinue_AfterOneReset_StillGetsTheBlobsThrough()
    {
        var (context, registry, proxy, session) = await StartAsync(output);
        await using var _ = context;
        var (image, blobs) = OneLayerImage(context, "big-417", 6 * 1024 * 1024, 37);
        proxy.Add("reset", r => OverLimit(r, Limit), RegistryFault.ResetAfterRequestBytes(64 * 1024));
        var refusesExpect = proxy.Add("417", r => r.Headers.ContainsKey("Expect"), RegistryFault.Custom("HTTP 417 Expectation Failed, body unread", async (http, _) =>
        {
            http.Response.StatusCode = StatusCodes.Status417ExpectationFailed;
            http.Response.Headers.Connection = "close";
            await http.Response.CompleteAsync();
        }), times: int.MaxValue);

        var result = await new ImagePusher(session).PushAsync(image, blobs,
            RegistryTestContext.Reference(proxy.Authority, "vddk/expect-417"), ["1"], new PushOptions { MaxParallelUploads = 1 }, context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        // Asked once (refused), never again.
        Assert.Equal(1, refusesExpect.Hits);
        Assert.Equal(await File.ReadAllBytesAsync(image.VddkLayer.FilePath), await PulledLayerAsync(session, registry.Authority, "vddk/expect-417", image.VddkLayer.Descriptor));
    }

    [SkippableTheory]
    [InlineData("413-close", "VDDK3009")]
    [InlineData("drop", "VDDK3004")]
    public async Task ProxyClosingTheConnectionEvenOnTheSmallestChunk_FailsWithACodedError_AfterBoundedAttempts(string refusal, string code)
    {
        var (context, _, proxy, session) = await StartAsync(output);
        await using var __ = context;
        var (image, blobs) = OneLayerImage(context, "tiny-" + refusal, 48 * 1024, 35);
        proxy.Add(refusal, r => OverLimit(r, 1000), refusal == "drop" ? RegistryFault.DropWithoutAnswer() : RegistryFault.RefuseBodyAndClose(), times: int.MaxValue);

        var error = await Assert.ThrowsAsync<VddkException>(() =>
            new ImagePusher(session).PushAsync(image, blobs, RegistryTestContext.Reference(proxy.Authority, "vddk/tiny"), ["1"], new PushOptions(), context.Log, None));

        Assert.Equal(code, error.Code);
        Assert.Contains("client_max_body_size", error.Message, StringComparison.Ordinal);
        // Bounded: at most the 5 attempts, each refused once as a single request and once as a chunk (48 KiB is below the 64 KiB floor).
        Assert.InRange(proxy.Injected.Count, 1, 2 * 5);
    }
}
