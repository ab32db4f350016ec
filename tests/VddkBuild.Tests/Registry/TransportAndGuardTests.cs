using System.Text;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class PublicRegistryGuardTests
{
    [Theory]
    [InlineData("docker.io/me/vddk")]
    [InlineData("me/vddk")]
    [InlineData("registry-1.docker.io/me/vddk")]
    [InlineData("index.docker.io/me/vddk")]
    [InlineData("quay.io/me/vddk")]
    [InlineData("ghcr.io/me/vddk")]
    [InlineData("gcr.io/p/vddk")]
    [InlineData("eu.gcr.io/p/vddk")]
    [InlineData("europe-west1-docker.pkg.dev/p/r/vddk")]
    [InlineData("public.ecr.aws/a/vddk")]
    [InlineData("mcr.microsoft.com/a/vddk")]
    [InlineData("registry.gitlab.com/g/vddk")]
    [InlineData("nvcr.io/a/vddk")]
    [InlineData("docker.pkg.github.com/o/r/vddk")]
    public void PublicHosts_AreRefusedCitingTheLicenceAndTheOverride(string reference)
    {
        var error = Assert.Throws<VddkException>(() => PublicRegistryGuard.Check(ImageReference.Parse(reference), allowPublic: false, NullBuildLogFor.Test));

        Assert.Equal(ErrorCodes.PublicRegistryRefused, error.Code);
        Assert.Contains("licence", error.Message);
        Assert.Contains("VddkAllowPublicRegistry=true", error.Message);
    }

    [Theory]
    [InlineData("default-route-openshift-image-registry.apps.c.example/openshift-mtv/vddk")]
    [InlineData("127.0.0.1:5000/vddk")]
    [InlineData("harbor.corp.example/vddk/vddk")]
    [InlineData("123456789012.dkr.ecr.eu-west-1.amazonaws.com/vddk")]
    [InlineData("quay.corp.example/vddk")]
    [InlineData("myquay.io/vddk")]
    public void PrivateHosts_PassSilently(string reference)
    {
        var log = new RecordingBuildLog();

        PublicRegistryGuard.Check(ImageReference.Parse(reference), allowPublic: false, log);

        Assert.Empty(log.Lines);
    }

    [Fact]
    public void PublicHost_WhenAllowed_Warns()
    {
        var log = new RecordingBuildLog();

        PublicRegistryGuard.Check(ImageReference.Parse("quay.io/me/vddk"), allowPublic: true, log);

        Assert.Single(log.Warnings(ErrorCodes.PublicRegistryAllowed));
    }
}

internal static class NullBuildLogFor
{
    public static readonly VddkBuild.Diagnostics.IBuildLog Test = VddkBuild.Diagnostics.NullBuildLog.Instance;
}

public sealed class RegistryTransportOptionsTests
{
    [Theory]
    [InlineData("127.0.0.1:5000", "127.0.0.1:5000", true)]
    [InlineData("127.0.0.1", "127.0.0.1:5000", true)]
    [InlineData("127.0.0.1:5001", "127.0.0.1:5000", false)]
    [InlineData("http://Reg.Example:5000/", "reg.example:5000", true)]
    [InlineData("[::1]:5000", "[::1]:5000", true)]
    [InlineData("other.example", "reg.example", false)]
    public void IsInsecure_MatchesHostWithOrWithoutPort(string entry, string authority, bool expected)
    {
        Assert.Equal(expected, new RegistryTransportOptions { InsecureRegistries = [entry] }.IsInsecure(authority));
    }

    [Fact]
    public void LocalhostIsNotImplicitlyInsecure()
    {
        var options = new RegistryTransportOptions();

        Assert.False(options.IsInsecure("localhost:5000"));
        Assert.False(options.IsInsecure("127.0.0.1:5000"));
    }

    [Fact]
    public void WithEnvironment_AddsTheSdkVariableSplitOnSemicolons()
    {
        var options = new RegistryTransportOptions { InsecureRegistries = ["a.example"] }
            .WithEnvironment(name => name == RegistryTransportOptions.InsecureRegistriesVariable ? " b.example:5000 ;; c.example" : null);

        Assert.True(options.IsInsecure("a.example"));
        Assert.True(options.IsInsecure("b.example:5000"));
        Assert.True(options.IsInsecure("c.example:443"));
        Assert.False(options.IsInsecure("d.example"));
    }
}

public sealed class CaBundleTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "vddk-ca-" + Guid.NewGuid().ToString("N")[..8]);

    public CaBundleTests() => Directory.CreateDirectory(_directory);

    [Fact]
    public void Load_ReadsPemCertificates()
    {
        using var ca = TestCertificateAuthority.Create(_directory);
        File.WriteAllText(Path.Combine(_directory, "bundle.pem"), File.ReadAllText(ca.CaCertificatePath) + File.ReadAllText(ca.ServerCertificatePath));

        var certificates = CaBundle.Load(Path.Combine(_directory, "bundle.pem"));

        Assert.Equal(2, certificates.Count);
    }

    [Fact]
    public void Load_NotPem_FailsWithVddk3008()
    {
        var path = Path.Combine(_directory, "ca.der");
        File.WriteAllBytes(path, [0x30, 0x82, 0x01, 0x00, 0x01]);

        Assert.Equal(ErrorCodes.CaBundleInvalid, Assert.Throws<VddkException>(() => CaBundle.Load(path)).Code);
    }

    [Fact]
    public void Load_PrivateKeyOnly_OrMissingFile_FailsWithVddk3008()
    {
        var path = Path.Combine(_directory, "key.pem");
        File.WriteAllText(path, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");

        Assert.Equal(ErrorCodes.CaBundleInvalid, Assert.Throws<VddkException>(() => CaBundle.Load(path)).Code);
        Assert.Equal(ErrorCodes.CaBundleInvalid, Assert.Throws<VddkException>(() => CaBundle.Load(Path.Combine(_directory, "missing.pem"))).Code);
    }

    [Fact]
    public void Session_WithInvalidBundle_FailsAtCreation()
    {
        var path = Path.Combine(_directory, "bad.pem");
        File.WriteAllText(path, "hello");

        var error = Assert.Throws<VddkException>(() => new RegistrySession(new RegistryTransportOptions { CaBundlePath = path }, new StaticCredentialProvider(), new RecordingBuildLog()));

        Assert.Equal(ErrorCodes.CaBundleInvalid, error.Code);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}

public sealed class RedactionAndResponseTests
{
    [Fact]
    public void UriForMessages_DropsQueryAndUserInfo()
    {
        Assert.Equal("https://bucket.s3.example/docker/blob", UriForMessages.Format(new Uri("https://user:pw@bucket.s3.example/docker/blob?X-Amz-Signature=abc&X-Amz-Credential=key")));
    }

    [Fact]
    public void ErrorSummary_QuotesCodesAndMessages()
    {
        var body = """{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"big":"x"}},{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}""";

        Assert.Equal("MANIFEST_INVALID: manifest invalid; BLOB_UNKNOWN: blob unknown to registry", RegistryErrorResponse.Summarize(Encoding.UTF8.GetBytes(body)));
    }

    /// <summary>Token endpoints answer in their own shapes (Docker Hub, OAuth2): their words are quoted, still marked as no error code.</summary>
    [Theory]
    [InlineData("""{"details":"requesting higher privileges than access token allows"}""", "\"requesting higher privileges than access token allows\"")]
    [InlineData("""{"error":"invalid_grant","error_description":"refresh token expired"}""", "\"invalid_grant: refresh token expired\"")]
    public void ErrorSummary_OfATokenEndpointsOwnJson_QuotesItsReason(string body, string expected)
    {
        var summary = RegistryErrorResponse.Summarize(Encoding.UTF8.GetBytes(body));

        Assert.Equal(expected, summary);
        Assert.True(BlobUploader.RefusesSingleRequestUploads(summary));
    }

    [Fact]
    public void ErrorSummary_OfNonJson_IsAShortExcerpt()
    {
        var summary = RegistryErrorResponse.Summarize(Encoding.UTF8.GetBytes("<html>" + new string('x', 500) + "</html>\n"));

        Assert.StartsWith("\"<html>", summary);
        Assert.True(summary.Length < 210);
    }

    [Fact]
    public void TransferProgress_FormatsBytesPercentAndRate()
    {
        Assert.Equal("5.0 MB of 10.0 MB (50%), 2.5 MB/s", TransferProgress.Format(5 * 1024 * 1024, 10 * 1024 * 1024, TimeSpan.FromSeconds(2)));
    }
}
