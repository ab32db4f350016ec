using VddkBuild.Archive;

namespace VddkBuild.Tests.Archive;

public sealed class VddkArchiveNameTests
{
    [Theory]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-7.0.3-19513565.x86_64.tar.gz", "7.0.3", "19513565")]
    [InlineData("VMware-vix-disklib-9.0.0.0.24742305.x86_64.tar.gz", "9.0.0.0", "24742305")]
    [InlineData("/downloads/VMware-vix-disklib-8.0.3-23950268.x86_64.tgz", "8.0.3", "23950268")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.xz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.zip", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64 (1).tar.gz", "8.0.1", "21562716")]
    [InlineData("vmware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1.21562716.x86_64.tar.gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-6.7.3-14389676.x86_64.tar.gz", "6.7.3", "14389676")]
    [InlineData("VMware-vix-disklib-9.0.1.0.24957454.x86_64.tar.gz", "9.0.1.0", "24957454")]
    // What browsers, wget, curl and file managers make of a second download or a copy.
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64(1).tar.gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar (1).gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz.1", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-9.0.0.0.24742305.x86_64.tar.gz.2", "9.0.0.0", "24742305")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar - Copy.gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64 copy.tar.gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64-2.tar.gz", "8.0.1", "21562716")]
    [InlineData("VMware-vix-disklib-7.0.3-19513565.x86_64_0.tar.gz", "7.0.3", "19513565")]
    public void Parses_version_and_build_number_from_vmware_names(string fileName, string version, string build)
    {
        var parsed = VddkArchiveName.TryParse(fileName);
        Assert.NotNull(parsed);
        Assert.Equal(version, parsed.Version);
        Assert.Equal(build, parsed.BuildNumber);
        Assert.True(VddkArchiveName.TryParse(fileName, out var v, out var b));
        Assert.Equal((version, build), (v, b));
    }

    [Theory]
    [InlineData("VMware-vix-disklib-8.0.1.x86_64.tar.gz", "8.0.1")]
    [InlineData("VMware-vix-disklib-9.0.0.0.x86_64.tar.gz", "9.0.0.0")]
    [InlineData("VMware-vix-disklib-8.0.1.x86_64.tar.gz.1", "8.0.1")]
    [InlineData("VMware-vix-disklib-8.0.1 (1).tar.gz", "8.0.1")]
    public void Name_without_build_number_gives_version_only(string fileName, string version)
    {
        var parsed = VddkArchiveName.TryParse(fileName);
        Assert.NotNull(parsed);
        Assert.Equal(version, parsed.Version);
        Assert.Null(parsed.BuildNumber);
    }

    [Theory]
    [InlineData("vddk.tar.gz")]
    [InlineData("VMware-vix-disklib.tar.gz")]
    [InlineData("VMware-vix-disklib-8-123456.x86_64.tar.gz")]
    [InlineData("something-VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz")]
    public void Renamed_file_is_not_an_error_but_null(string fileName)
    {
        Assert.Null(VddkArchiveName.TryParse(fileName));
        Assert.False(VddkArchiveName.TryParse(fileName, out _, out var build));
        Assert.Null(build);
    }

    [Theory]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", "x86_64")]
    [InlineData("VMware-vix-disklib-9.0.0.0.24742305.aarch64.tar.gz", "aarch64")]
    [InlineData("VMware-vix-disklib-9.0.0.0.24742305.ARM64 (1).tar.gz", "arm64")]
    [InlineData("VMware-vix-disklib-8.0.1-21562716.tar.gz", null)]
    [InlineData("VMware-vix-disklib-8.0.1.x86-64.tar.gz", "x86_64")]
    public void The_architecture_the_name_states_is_kept(string fileName, string? architecture) =>
        Assert.Equal(architecture, VddkArchiveName.TryParse(fileName)!.Architecture);

    [Fact]
    public void File_name_uses_dash_before_vddk9_and_dot_from_vddk9()
    {
        Assert.Equal("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", new VddkArchiveName("8.0.1", "21562716").ToFileName());
        Assert.Equal("VMware-vix-disklib-9.0.0.0.24742305.x86_64.tar.gz", new VddkArchiveName("9.0.0.0", "24742305").ToFileName());
    }

    [Theory]
    [InlineData("9.0.0", "9.0.0.0", true)]
    [InlineData("8.0.1", "8.0.1", true)]
    [InlineData("8.0.1", "8.0.3", false)]
    [InlineData("8.0.1", "9.0.1", false)]
    public void Versions_are_compatible_when_common_components_agree(string a, string b, bool compatible) =>
        Assert.Equal(compatible, VddkArchiveName.AreCompatible(a, b));
}
