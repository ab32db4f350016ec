using VddkBuild.IntegrationTests.Tasks;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// A full PublishVddk with <c>-bl</c> and <c>-v:diag</c> against registries that need credentials (Basic with the
/// password in <c>VDDK_REGISTRY_PASSWORD</c>; bearer tokens): the password, its Basic form and the tokens appear
/// nowhere - console, replayed binary log, the binary log's bytes, files under obj/ and bin/. The .NET SDK's
/// <c>DOTNET_CONTAINER_*_PWORD</c> variables are logged by MSBuild itself (every DOTNET_* variable is): pinned here,
/// with the warning the build gives.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class SecretsTests(ITestOutputHelper output)
{
    private static readonly string SampleProjectDirectory = Path.Combine(DotnetCli.RepoRoot, "samples", "PublishVddk");

    private static async Task<(BuildRun Run, string Replay, byte[] BinlogBytes)> PublishWithBinlogAsync(PushWorld world, string name)
    {
        var binlog = Path.Combine(world.Work, name + ".binlog");
        var run = await world.Sample.RunAsync("PublishVddk", world.PublishProperties("8.0.1"), "-bl:" + binlog, "-v:diag");
        Assert.True(File.Exists(binlog), run.ToString());
        var replay = await DotnetCli.RunAsync(world.Work, ["msbuild", binlog, "-v:diag", "-nologo"]);
        Assert.True(replay.Succeeded || !run.Succeeded, replay.ToString());
        var bytes = SecretScan.Gunzip(File.ReadAllBytes(binlog));
        return (run, replay.Output, bytes);
    }

    private static void AssertNowhere(SecretScan scan, PushWorld world, (BuildRun Run, string Replay, byte[] BinlogBytes) result)
    {
        scan.AssertNotIn(result.Run.Output, "the console output (-v:diag)");
        scan.AssertNotIn(result.Replay, "the replayed binary log (-v:diag)");
        scan.AssertNotInBytes(result.BinlogBytes, "the binary log's records");
        scan.AssertNotInFiles(world.Sample.IntermediateDirectory);
        scan.AssertNotInFiles(world.Sample.OutputDirectory);
        scan.AssertNotInFiles(world.Sample.TempDirectory);
        scan.AssertNotInFiles(Path.Combine(SampleProjectDirectory, "obj"));
        scan.AssertNotInFiles(Path.Combine(SampleProjectDirectory, "bin"));
    }

    [SkippableFact]
    public async Task A_Basic_auth_push_with_binlog_and_diag_verbosity_leaks_the_password_nowhere()
    {
        await using var world = await PushWorld.StartAsync(output, RegistryAuth.Basic);

        var result = await PublishWithBinlogAsync(world, "basic");

        Assert.True(result.Run.Succeeded, result.Run.ToString());
        // Not vacuous: the logs hold the run in detail, the user name, and where the credentials came from.
        Assert.Contains("VddkImageDigest =", result.Replay);
        Assert.Contains($"user '{PushWorld.User}'", result.Replay);
        Assert.Contains("from VDDK_REGISTRY_PASSWORD", result.Replay);
        AssertNowhere(SecretScan.For(PushWorld.User, world.Password), world, result);
        Assert.DoesNotContain("VDDK3903", result.Run.Output);
    }

    [SkippableFact]
    public async Task A_rejected_password_fails_with_a_coded_error_that_does_not_contain_it()
    {
        await using var world = await PushWorld.StartAsync(output, RegistryAuth.Basic);
        var wrong = "wrong-" + Guid.NewGuid().ToString("N");
        world.Sample.Environment["VDDK_REGISTRY_PASSWORD"] = wrong;

        var result = await PublishWithBinlogAsync(world, "rejected");

        Assert.False(result.Run.Succeeded);
        Assert.Contains(result.Run.ErrorCodes, c => c is "VDDK3011" or "VDDK3002");
        Assert.Contains(PushWorld.User, result.Run.Output);
        AssertNowhere(SecretScan.For(PushWorld.User, wrong, world.Password), world, result);
    }

    [SkippableFact]
    public async Task A_bearer_token_push_with_binlog_and_diag_verbosity_leaks_no_token_or_password()
    {
        await using var world = await PushWorld.StartAsync(output, RegistryAuth.BearerToken);

        var result = await PublishWithBinlogAsync(world, "bearer");

        Assert.True(result.Run.Succeeded, result.Run.ToString());
        Assert.True(world.Tokens!.Issued > 0);
        AssertNowhere(SecretScan.For(PushWorld.User, world.Password), world, result);
    }

    /// <summary>
    /// Pins the MSBuild behaviour found here: it records every DOTNET_* environment variable in binary logs and
    /// -v:diag output, so the .NET SDK's password variable is in them. The build warns (VDDK3903), naming the
    /// variable and not the value; files under obj/ and bin/ stay clean.
    /// </summary>
    [SkippableFact]
    public async Task The_SDKs_DOTNET_password_variable_is_logged_by_MSBuild_and_the_build_warns_VDDK3903()
    {
        await using var world = await PushWorld.StartAsync(output, RegistryAuth.Basic);
        world.Sample.Environment.Remove("VDDK_REGISTRY_PASSWORD");
        world.Sample.Environment.Remove("VDDK_REGISTRY_USERNAME");
        world.Sample.Environment["DOTNET_CONTAINER_PUSH_REGISTRY_UNAME"] = PushWorld.User;
        world.Sample.Environment["DOTNET_CONTAINER_PUSH_REGISTRY_PWORD"] = world.Password;
        world.Sample.Environment["DOTNET_CONTAINER_PULL_REGISTRY_UNAME"] = PushWorld.User;
        world.Sample.Environment["DOTNET_CONTAINER_PULL_REGISTRY_PWORD"] = world.Password;
        var scan = SecretScan.For(PushWorld.User, world.Password);

        var result = await PublishWithBinlogAsync(world, "sdk-variables");

        Assert.True(result.Run.Succeeded, result.Run.ToString());
        Assert.True(scan.AppearsIn(result.BinlogBytes), "MSBuild no longer logs DOTNET_* variables; SecretEnvironmentGuard's warning can be relaxed");
        Assert.Contains("warning VDDK3903: The registry password in DOTNET_CONTAINER_PUSH_REGISTRY_PWORD and DOTNET_CONTAINER_PULL_REGISTRY_PWORD is recorded", result.Run.Output);
        scan.AssertNotInFiles(world.Sample.IntermediateDirectory);
        scan.AssertNotInFiles(world.Sample.OutputDirectory);
    }

    /// <summary>
    /// A pipeline moved over from the SDK's PublishContainer still sets its generic DOTNET_CONTAINER_REGISTRY_PWORD:
    /// VddkBuild does not read it, MSBuild logs it like every DOTNET_* variable, and the build warns naming it.
    /// </summary>
    [SkippableFact]
    public async Task The_SDKs_generic_DOTNET_CONTAINER_REGISTRY_PWORD_is_logged_by_MSBuild_and_the_build_warns_VDDK3903()
    {
        await using var world = await PushWorld.StartAsync(output, RegistryAuth.Basic);
        const string sdkPassword = "sdk-generic-Passw0rd-5c1e";
        world.Sample.Environment["DOTNET_CONTAINER_REGISTRY_UNAME"] = PushWorld.User;
        world.Sample.Environment["DOTNET_CONTAINER_REGISTRY_PWORD"] = sdkPassword;
        var scan = SecretScan.For(PushWorld.User, world.Password);

        var result = await PublishWithBinlogAsync(world, "sdk-generic-variable");

        Assert.True(result.Run.Succeeded, result.Run.ToString());
        Assert.True(SecretScan.For("unused", sdkPassword).AppearsIn(result.BinlogBytes), "MSBuild no longer logs DOTNET_* variables");
        Assert.Contains("warning VDDK3903: The registry password in DOTNET_CONTAINER_REGISTRY_PWORD is recorded", result.Run.Output);
        Assert.All(result.Run.Output.Split('\n').Where(l => l.Contains("VDDK3903", StringComparison.Ordinal)), l => Assert.DoesNotContain(sdkPassword, l));
        // VDDK_REGISTRY_PASSWORD, set by the world, is what pushed; it is still nowhere.
        AssertNowhere(scan, world, result);
    }

    /// <summary>With MSBUILDLOGALLENVIRONMENTVARIABLES MSBuild logs every variable, VddkBuild's own too: the build warns.</summary>
    [SkippableFact]
    public async Task With_MSBUILDLOGALLENVIRONMENTVARIABLES_even_VDDK_REGISTRY_PASSWORD_is_logged_and_the_build_warns_VDDK3903()
    {
        await using var world = await PushWorld.StartAsync(output, RegistryAuth.Basic);
        world.Sample.Environment["MSBUILDLOGALLENVIRONMENTVARIABLES"] = "1";
        var scan = SecretScan.For(PushWorld.User, world.Password);

        var result = await PublishWithBinlogAsync(world, "all-environment");

        Assert.True(result.Run.Succeeded, result.Run.ToString());
        Assert.True(scan.AppearsIn(result.BinlogBytes), "MSBuild no longer logs all environment variables with MSBUILDLOGALLENVIRONMENTVARIABLES");
        Assert.Contains("warning VDDK3903: The registry password in VDDK_REGISTRY_PASSWORD is recorded", result.Run.Output);
        Assert.Contains("without MSBUILDLOGALLENVIRONMENTVARIABLES", result.Run.Output);
        scan.AssertNotInFiles(world.Sample.IntermediateDirectory);
        scan.AssertNotInFiles(world.Sample.OutputDirectory);
    }
}
