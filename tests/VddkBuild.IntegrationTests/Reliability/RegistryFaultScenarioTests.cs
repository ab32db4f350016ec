using Microsoft.AspNetCore.Http;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Faults;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// PublishVddk (dotnet build of the sample) against a real docker-registry behind a fault-injecting proxy. For
/// each fault the build completes, or fails with a coded error after bounded retries; either way the tag never
/// points at an image with a missing or wrong blob, and a plain re-run completes with the same digest.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class RegistryFaultScenarioTests(ITestOutputHelper output)
{
    private const string Tag = "8.0.1";

    private static bool PushRequest(HttpRequest r) => RequestMatch.UploadStart(r) || RequestMatch.BlobData(r) || RequestMatch.ManifestPut(r);

    /// <summary>The ordinary upload path alone: the layer is not sent while the archive is checked, so faults meant for uploads hit the path that retries.</summary>
    private const string OrdinaryUploads = "-p:VddkEarlyLayerUpload=false";

    /// <summary>Runs the faulted publish, checks the tag, re-runs without faults, checks again; returns the faulted run.</summary>
    private async Task<BuildRun> RunScenarioAsync(PushWorld world, string scenario, params string[] extra)
    {
        var faulted = await world.PublishAsync(Tag, extra);
        var after = await world.AssertTagIsAbsentOrCompleteAsync(Tag);
        var injected = world.Proxy.Injected;
        Assert.NotEmpty(injected);
        if (faulted.Succeeded)
        {
            Assert.True(after.Exists, "the build succeeded but the tag is missing");
            Assert.Equal(faulted.Digest, after.ManifestDigest);
        }
        else
        {
            Assert.NotEmpty(faulted.ErrorCodes);
            Assert.DoesNotContain("VDDK9999", faulted.ErrorCodes);
        }

        world.Proxy.Clear();
        var rerun = await world.PublishAsync(Tag, extra);
        Assert.True(rerun.Succeeded, rerun.ToString());
        var final = await world.AssertTagIsAbsentOrCompleteAsync(Tag);
        Assert.Equal(rerun.Digest, final.ManifestDigest);
        if (faulted.Succeeded)
        {
            Assert.Equal(faulted.Digest, rerun.Digest);
        }
        ScenarioTable.Report(output, scenario, injected, faulted, after, rerun, headsChecked: world.Auth == RegistryAuth.Anonymous);
        return faulted;
    }

    [SkippableFact]
    public async Task Connection_reset_in_the_middle_of_a_blob_upload_is_retried_and_the_push_completes()
    {
        await using var world = await PushWorld.StartAsync(output);
        world.Proxy.Add("reset", RequestMatch.BlobData, RegistryFault.ResetAfterRequestBytes(8192));

        var run = await RunScenarioAsync(world, "connection reset mid blob upload", OrdinaryUploads);

        Assert.True(run.Succeeded, run.ToString());
        Assert.True(run.Retries >= 1);
    }

    [SkippableFact]
    public async Task Connection_reset_while_the_layer_is_sent_during_the_check_falls_back_to_an_ordinary_upload()
    {
        await using var world = await PushWorld.StartAsync(output);
        world.Proxy.Add("reset early PATCH", r => r.Method == "PATCH", RegistryFault.ResetAfterRequestBytes(8192));

        var run = await RunScenarioAsync(world, "connection reset in the layer sent while the archive is checked");

        // Not a retry: the pusher sends the layer the ordinary way, once the check has passed.
        Assert.True(run.Succeeded, run.ToString());
        Assert.Contains(world.Proxy.Injected, i => i.Rule == "reset early PATCH");
        Assert.Equal(0, run.Retries);
    }

    [SkippableFact]
    public async Task A_burst_of_500_502_503_on_upload_requests_is_retried_and_the_push_completes()
    {
        await using var world = await PushWorld.StartAsync(output);
        world.Proxy.Add("500", PushRequest, RegistryFault.Status(500));
        world.Proxy.Add("502", PushRequest, RegistryFault.Status(502));
        world.Proxy.Add("503", PushRequest, RegistryFault.Status(503));

        var run = await RunScenarioAsync(world, "burst of HTTP 500, 502, 503 on uploads", OrdinaryUploads);

        Assert.True(run.Succeeded, run.ToString());
        Assert.Equal(3, world.Proxy.Injected.Count);
        Assert.True(run.Retries >= 3, run.ToString());
    }

    [SkippableFact]
    public async Task HTTP_429_with_Retry_After_is_honoured_and_the_push_completes()
    {
        await using var world = await PushWorld.StartAsync(output);
        world.Proxy.Add("429", RequestMatch.ManifestPut, RegistryFault.Status(429, retryAfter: "2"), times: 2);

        var run = await RunScenarioAsync(world, "HTTP 429 with Retry-After: 2 (twice) on the manifest");

        Assert.True(run.Succeeded, run.ToString());
        Assert.Equal(2, run.Retries);
        Assert.Contains("retrying in 2.0 s", run.Output);
    }

    [SkippableFact]
    public async Task A_registry_that_keeps_answering_503_fails_with_VDDK3004_after_bounded_retries_and_no_tag()
    {
        await using var world = await PushWorld.StartAsync(output);
        world.Proxy.Add("503 forever", RequestMatch.ManifestPut, RegistryFault.Status(503), times: int.MaxValue);

        var run = await RunScenarioAsync(world, "HTTP 503 on every manifest PUT");

        Assert.False(run.Succeeded);
        Assert.Equal(["VDDK3004"], run.ErrorCodes);
        Assert.Contains("after 5 attempts", run.Output);
        Assert.Equal(4, run.Retries);
        Assert.False(Directory.Exists(Path.Combine(world.Sample.OutputDirectory)) && Directory.EnumerateFiles(world.Sample.OutputDirectory, "*", SearchOption.AllDirectories).Any());
    }

    [SkippableFact]
    public async Task Slow_dripping_responses_do_not_time_out_or_corrupt_anything()
    {
        await using var world = await PushWorld.StartAsync(output);
        world.Proxy.Add("drip manifests", RequestMatch.ManifestGet, RegistryFault.DripResponse(64, TimeSpan.FromMilliseconds(40)), times: int.MaxValue);
        world.Proxy.Add("drip blobs", RequestMatch.BlobGet, RegistryFault.DripResponse(64, TimeSpan.FromMilliseconds(40)), times: int.MaxValue);

        var run = await RunScenarioAsync(world, "base manifests and config dripped 64 B / 40 ms");

        Assert.True(run.Succeeded, run.ToString());
        Assert.Equal(0, run.Retries);
    }

    [SkippableFact]
    public async Task Truncated_response_bodies_are_detected_and_retried()
    {
        await using var world = await PushWorld.StartAsync(output);
        world.Proxy.Add("cut manifest", RequestMatch.ManifestGet, RegistryFault.TruncateResponse(0.5));
        world.Proxy.Add("cut blob", RequestMatch.BlobGet, RegistryFault.TruncateResponse(0.5));

        var run = await RunScenarioAsync(world, "base manifest and config body cut at 50%");

        Assert.True(run.Succeeded, run.ToString());
        Assert.Equal(2, world.Proxy.Injected.Count);
        Assert.True(run.Retries >= 2, run.ToString());
    }

    [SkippableFact]
    public async Task The_registry_restarted_in_the_middle_of_a_blob_upload_is_survived()
    {
        await using var world = await PushWorld.StartAsync(output);
        Task? restarted = null;
        world.Proxy.Add("restart", RequestMatch.BlobData, RegistryFault.Custom("registry killed mid-upload, back after 1.5 s", async (context, _) =>
        {
            await RegistryFault.ReadRequestBytesAsync(context, 8192);
            await world.Registry.StopAsync();
            context.Abort();
            restarted = Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(1.5));
                await world.Registry.StartAgainAsync();
            });
        }));

        var run = await RunScenarioAsync(world, "registry process killed mid blob upload, restarted (same port and storage) 1.5 s later");

        Assert.NotNull(restarted);
        await restarted;
        Assert.True(run.Succeeded, run.ToString());
        Assert.Contains(world.Proxy.Requests, r => r.Status == 502);
    }

    [SkippableFact]
    public async Task A_bearer_token_that_expires_mid_push_is_renewed_and_the_push_completes()
    {
        await using var world = await PushWorld.StartAsync(output, RegistryAuth.BearerToken);
        // The token endpoint says 5 minutes, the registry stops accepting the token after 2 s; requests are held
        // 3 s on the way, so the upload and the manifest arrive with a token that has expired meanwhile.
        world.Tokens!.RejectedByRegistryAfter = TimeSpan.FromSeconds(2);
        world.Proxy.Add("hold upload", RequestMatch.BlobData, RegistryFault.Delay(TimeSpan.FromSeconds(3)));
        world.Proxy.Add("hold manifest", RequestMatch.ManifestPut, RegistryFault.Delay(TimeSpan.FromSeconds(3)));
        var issuedBefore = world.Tokens.Issued;

        var run = await RunScenarioAsync(world, "bearer token expires mid-push (registry rejects it after 2 s, requests held 3 s)");

        Assert.True(run.Succeeded, run.ToString());
        Assert.Contains(world.Proxy.Requests, r => r.Status == 401 && (r.Kind == TestSupport.Registry.RegistryRequestKind.Upload || r.Kind == TestSupport.Registry.RegistryRequestKind.Manifest));
        Assert.True(world.Tokens.Issued - issuedBefore >= 3, $"only {world.Tokens.Issued - issuedBefore} tokens issued");
        Assert.DoesNotContain(world.Password, run.Output);
    }
}
