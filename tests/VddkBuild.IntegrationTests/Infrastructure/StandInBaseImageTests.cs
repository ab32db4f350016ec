using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Infrastructure;

public sealed class StandInBaseImageTests : IDisposable
{
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vddkbuild-standin-test-");
    private readonly ContainerToolsSandbox _sandbox = new();

    [SkippableFact]
    public async Task Skopeo_reads_an_index_with_amd64_and_arm64_manifests()
    {
        Skopeo.Require();
        var info = StandInBaseImage.WriteOciLayout(Path.Combine(_work.FullName, "layout"));
        var skopeo = new Skopeo(_sandbox);

        using var index = await skopeo.InspectRawAsync(info.Reference);
        using var amd64 = await skopeo.InspectAsync(info.Reference, platform: "linux/amd64");
        using var arm64 = await skopeo.InspectConfigAsync(info.Reference, platform: "linux/arm64/v8");

        Assert.Equal("application/vnd.oci.image.index.v1+json", index.RootElement.GetProperty("mediaType").GetString());
        var platforms = index.RootElement.GetProperty("manifests").EnumerateArray()
            .Select(m => m.GetProperty("platform"))
            .Select(p => $"{p.GetProperty("os").GetString()}/{p.GetProperty("architecture").GetString()}" + (p.TryGetProperty("variant", out var v) ? "/" + v.GetString() : string.Empty))
            .ToList();
        Assert.Equal(["linux/amd64", "linux/arm64/v8"], platforms);
        Assert.Equal("amd64", amd64.RootElement.GetProperty("Architecture").GetString());
        Assert.Equal("arm64", arm64.RootElement.GetProperty("architecture").GetString());
        Assert.Equal("v8", arm64.RootElement.GetProperty("variant").GetString());
        Assert.NotEqual(info.ManifestDigests["linux/amd64"], info.ManifestDigests["linux/arm64/v8"]);
    }

    [Fact]
    public void Writing_twice_gives_the_same_digests()
    {
        var first = StandInBaseImage.WriteOciLayout(Path.Combine(_work.FullName, "a"));
        var second = StandInBaseImage.WriteOciArchive(Path.Combine(_work.FullName, "b.tar"));

        Assert.Equal(first.IndexDigest, second.IndexDigest);
        Assert.Equal(first.ManifestDigests, second.ManifestDigests);
    }

    [SkippableFact]
    public async Task Podman_runs_a_shell_from_the_archive_with_the_UBI_like_layout()
    {
        Podman.Require();
        var info = StandInBaseImage.WriteOciArchive(Path.Combine(_work.FullName, "base.tar"));
        var podman = new Podman(_sandbox);
        var image = await podman.LoadOciArchiveAsync(info.Location, info.Tag);

        var result = await podman.RunAsync(image, new ContainerRunOptions
        {
            User = ForkliftCheck.ArbitraryUser,
            Command = ["sh", "-c", "cat /etc/vddkbuild-platform; readlink /bin; readlink /lib64; readlink /sbin; id -u; id -g; test -d /opt && test -k /tmp && echo layout-ok"],
        });

        result.EnsureSuccess();
        Assert.Equal(["linux/amd64", "usr/bin", "usr/lib64", "usr/sbin", "1000680000", "0", "layout-ok"],
            result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [SkippableFact]
    public async Task Podman_picks_the_arm64_manifest_when_asked()
    {
        // The arm64 entry carries the same (amd64) busybox, so it still runs here and its marker tells which was picked.
        Podman.Require();
        var info = StandInBaseImage.WriteOciLayout(Path.Combine(_work.FullName, "layout"));
        var podman = new Podman(_sandbox);
        var image = await podman.PullAsync(info.Reference, platform: "linux/arm64/v8");

        var result = await podman.RunAsync(image, new ContainerRunOptions { Command = ["cat", StandInBaseImage.PlatformMarkerPath] });

        Assert.Equal("linux/arm64/v8", result.EnsureSuccess().StandardOutput.Trim());
    }

    public void Dispose()
    {
        _sandbox.Dispose();
        _work.Delete(recursive: true);
    }
}
