using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using VddkBuild.IntegrationTests.Reliability;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Infrastructure;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// A disconnected network: the base image's registry cannot be reached, and registries.conf (CONTAINERS_REGISTRIES_CONF,
/// as podman reads it) names a mirror, a real docker-registry holding the base, and blocks the registry itself (so that
/// nothing goes out), which leaves its mirrors usable as in podman. PublishVddk pulls the base from the
/// mirror, says so, and builds the same image as from the mirror directly; skopeo with the same file sees the same layers.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class BaseImageMirrorTests(ITestOutputHelper output)
{
    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private static List<string> Layers(JsonDocument inspect) =>
        [.. inspect.RootElement.GetProperty("Layers").EnumerateArray().Select(l => l.GetString()!)];

    [SkippableFact]
    public async Task PublishVddk_pulls_an_unreachable_base_from_the_registries_conf_mirror_and_says_so()
    {
        await using var world = await PushWorld.StartAsync(output);
        var primary = $"127.0.0.1:{ClosedPort()}";
        var conf = Path.Combine(world.Work, "registries.conf");
        File.WriteAllText(conf, $"""
            unqualified-search-registries = []

            [[registry]]
            prefix = "{primary}/ubi8"
            location = "{primary}/ubi8"
            blocked = true

            [[registry.mirror]]
            location = "{world.Registry.Authority}/base"
            insecure = true
            """);
        world.Sample.Environment["CONTAINERS_REGISTRIES_CONF"] = conf;
        var properties = world.PublishProperties("mirrored");
        properties["VddkBaseImage"] = $"{primary}/ubi8/ubi-minimal:latest";

        var mirrored = await world.Sample.RunAsync("PublishVddk", properties);
        output.WriteLine(mirrored.ToString());

        Assert.True(mirrored.Succeeded, mirrored.ToString());
        Assert.Contains($"Base image {primary}/ubi8/ubi-minimal:latest: pulled from mirror {world.Registry.Authority}/base/ubi-minimal:latest", mirrored.Output);
        Assert.Contains($"warning VDDK3901: Registry {world.Registry.Authority} is marked insecure", mirrored.Output);
        Assert.NotNull(mirrored.Digest);

        // The same mirror content gives the same image as naming the mirror in VddkBaseImage.
        properties["VddkBaseImage"] = $"{world.Registry.Authority}/{PushWorld.BaseRepository}:latest";
        properties["VddkInsecureRegistries"] = world.Registry.Authority;
        properties["VddkImageTags"] = "direct";
        var direct = await world.Sample.RunAsync("PublishVddk", properties);
        Assert.True(direct.Succeeded, direct.ToString());
        Assert.Equal(direct.Digest, mirrored.Digest);

        // skopeo (containers/image, given the file with --registries-conf) resolves the unreachable name through the mirror
        // to the amd64 manifest the build names, whose layers the pushed image starts with; podman, reading the file
        // through CONTAINERS_REGISTRIES_CONF like the build, pulls the image with that manifest's config.
        using var sandbox = new ContainerToolsSandbox();
        File.WriteAllText(sandbox.RegistriesConfPath, File.ReadAllText(conf));
        async Task<JsonDocument> RawAsync(string reference) => JsonDocument.Parse((await ProcessRunner.RunCheckedAsync("skopeo",
            ["--registries-conf", sandbox.RegistriesConfPath, "--policy", sandbox.PolicyPath, "inspect", "--raw", "docker://" + reference], sandbox.Environment, TimeSpan.FromMinutes(1))).StandardOutput);
        using var index = await RawAsync($"{primary}/ubi8/ubi-minimal:latest");
        var amd64 = index.RootElement.GetProperty("manifests").EnumerateArray()
            .Single(m => m.GetProperty("platform").GetProperty("architecture").GetString() == "amd64").GetProperty("digest").GetString()!;
        Assert.Contains($"pulled from mirror {world.Registry.Authority}/base/ubi-minimal:latest ({amd64})", mirrored.Output);
        using var manifest = await RawAsync($"{primary}/ubi8/ubi-minimal@{amd64}");
        using var pushed = await new Skopeo(world.Sandbox).InspectAsync($"docker://{world.Registry.Authority}/{PushWorld.Repository}:mirrored", world.Access);
        List<string> baseLayers = [.. manifest.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("digest").GetString()!)];
        Assert.NotEmpty(baseLayers);
        Assert.Equal(baseLayers, Layers(pushed)[..baseLayers.Count]);
        Podman.Require();
        var imageId = await new Podman(sandbox).PullAsync($"{primary}/ubi8/ubi-minimal:latest", RegistryAccess.Insecure, "linux/amd64");
        Assert.Equal(manifest.RootElement.GetProperty("config").GetProperty("digest").GetString(), "sha256:" + imageId);
    }

    [SkippableFact]
    public async Task Without_registries_conf_the_unreachable_base_is_VDDK3013_and_a_blocked_or_malformed_one_is_coded()
    {
        await using var world = await PushWorld.StartAsync(output);
        var primary = $"127.0.0.1:{ClosedPort()}";
        var conf = Path.Combine(world.Work, "registries.conf");
        File.WriteAllText(conf, $"""
            [[registry]]
            location = "{primary}"
            [[registry.mirror]]
            location = "{world.Registry.Authority}/base"
            insecure = true
            """);
        world.Sample.Environment["CONTAINERS_REGISTRIES_CONF"] = conf;
        var properties = world.PublishProperties("off");
        properties["VddkBaseImage"] = $"{primary}/ubi-minimal:latest";
        properties["VddkInsecureRegistries"] = primary;

        properties["VddkRegistriesConf"] = "false";
        var off = await world.Sample.RunAsync("PublishVddk", properties);
        output.WriteLine(off.ToString());
        Assert.Equal(["VDDK3013"], off.ErrorCodes);

        File.WriteAllText(conf, $"[[registry]]\nlocation = \"{primary}\"\nblocked = true\n");
        properties.Remove("VddkRegistriesConf");
        var blocked = await world.Sample.RunAsync("PublishVddk", properties);
        output.WriteLine(blocked.ToString());
        Assert.Equal(["VDDK2011"], blocked.ErrorCodes);
        Assert.Contains(conf, blocked.Output);

        var other = Path.Combine(world.Work, "other.conf");
        File.WriteAllText(other, "[[registry]\nlocation = \"x.example\"\n");
        properties["VddkRegistriesConf"] = other;
        var malformed = await world.Sample.RunAsync("PublishVddk", properties);
        output.WriteLine(malformed.ToString());
        Assert.Equal(["VDDK2010"], malformed.ErrorCodes);
        Assert.Contains($"'{other}' is invalid: line 1", malformed.Output);
    }
}
