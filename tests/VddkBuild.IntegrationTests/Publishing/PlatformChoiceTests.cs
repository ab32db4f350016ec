using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Publishing;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.IntegrationTests.Publishing;

/// <summary>
/// VddkPlatform picks the image of a multi-platform base, but the VDDK itself is x86_64 only: an image for another
/// architecture is built as asked (the stand-in base offers linux/arm64/v8) and warned about.
/// </summary>
public sealed class PlatformChoiceTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("vddk-platform-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Theory]
    [InlineData("linux/amd64", "amd64", false)]
    [InlineData("linux/arm64/v8", "arm64", true)]
    public async Task A_platform_other_than_linux_amd64_is_built_with_warning_VDDK2901(string platform, string architecture, bool warned)
    {
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);
        await using var baseSource = new OciLayoutSource(StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Location, "latest");
        var log = new RecordingBuildLog();

        var result = await VddkImagePipeline.BuildAsync(
            new VddkImageRequest { ArchivePath = archive, BaseSource = baseSource, WorkDirectory = Path.Combine(_work, "obj"), Platform = Platform.Parse(platform) },
            log, CancellationToken.None);

        Assert.Equal(architecture, (string?)System.Text.Json.Nodes.JsonNode.Parse(result.Image.ConfigBytes)!["architecture"]);
        var warnings = log.Warnings(ErrorCodes.PlatformNotAmd64);
        Assert.Equal(warned ? 1 : 0, warnings.Count);
        if (warned)
        {
            Assert.Contains(platform, warnings[0], StringComparison.Ordinal);
            Assert.Contains("linux/amd64", warnings[0], StringComparison.Ordinal);
        }
    }
}
