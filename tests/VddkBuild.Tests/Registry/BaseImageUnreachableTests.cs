using System.Net;
using System.Net.Sockets;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Registry;

/// <summary>A base image whose registry cannot be reached (a machine without internet access) says how to give the base another way.</summary>
public sealed class BaseImageUnreachableTests
{
    [Theory]
    [InlineData(":latest")]
    [InlineData("@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public async Task An_unreachable_base_registry_is_VDDK3013_naming_VddkBaseImage_a_mirror_and_an_oci_archive_copy(string pin)
    {
        var authority = ClosedAuthority();
        using var session = Session(authority);
        var source = new RegistryImageSource(session, ImageReference.Parse($"{authority}/ubi8/ubi-minimal{pin}"));

        var error = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryUnreachable, error.Code);
        Assert.Contains("could not be reached", error.Message);
        Assert.Contains("VddkBaseImage", error.Message);
        Assert.Contains("mirror registry", error.Message);
        Assert.Contains($"skopeo copy docker://{authority}/ubi8/ubi-minimal{pin} oci-archive:base.oci.tar", error.Message);
        // The manifest read is named as the reference reads: a digest after '@', never 'repository:sha256:...'.
        Assert.Contains($"Reading manifest {authority}/ubi8/ubi-minimal{pin}", error.Message);
    }

    [Fact]
    public async Task With_registries_conf_mirrors_the_hint_is_given_once_by_the_primary_not_by_each_mirror()
    {
        var mirror = ClosedAuthority();
        var primary = ClosedAuthority();
        using var session = Session(mirror, primary);
        var requested = ImageReference.Parse($"{primary}/ubi8/ubi-minimal:latest");
        var source = new MirroredImageSource(session, requested,
            [new PullSource(ImageReference.Parse($"{mirror}/ubi8/ubi-minimal:latest"), Insecure: true, IsMirror: true), new PullSource(requested, Insecure: true, IsMirror: false)],
            requested.ToString(), "registries.conf", new RecordingBuildLog());

        var error = await Assert.ThrowsAsync<VddkException>(() => source.ResolveAsync(Platform.LinuxAmd64, CancellationToken.None));

        Assert.Equal(ErrorCodes.RegistryUnreachable, error.Code);
        Assert.Contains($"mirror {mirror}/ubi8/ubi-minimal:latest: VDDK3013", error.Message);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(error.Message, "comes from VddkBaseImage"));
    }

    /// <summary>A loopback address nobody listens on: the connection is refused at once, as on a network without a route.</summary>
    private static string ClosedAuthority()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"127.0.0.1:{port}";
    }

    private static RegistrySession Session(params string[] insecure) => new(
        new RegistryTransportOptions
        {
            InsecureRegistries = insecure,
            Proxy = null,
            Retry = new RetrySettings { MaxAttempts = 2, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(5) },
        },
        new StaticCredentialProvider(), new RecordingBuildLog());
}
