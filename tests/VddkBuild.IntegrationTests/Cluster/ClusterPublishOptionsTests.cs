using System.Formats.Tar;
using System.IO.Compression;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.Oci;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>
/// PublishVddk on the cluster path (a kubeconfig, no VddkRegistry) with VddkImageFormat, the automatic fallback to
/// Docker schema 2 and VddkAddSoname8Link: what the registry stores is what VddkClusterImageReference and the Forklift
/// provider name, and a re-run uploads nothing.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class ClusterPublishOptionsTests(CephRgw ceph, ITestOutputHelper output) : IClassFixture<CephRgw>, IDisposable
{
    private const string Repository = "openshift-mtv/vddk";

    private readonly string _work = Directory.CreateTempSubdirectory("vddk-cluster-options-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private Dictionary<string, string> Properties(ClusterScenario scenario, SampleVddkArchiveOptions archive) => new()
    {
        ["VddkKubeconfig"] = scenario.Cluster.KubeconfigPath,
        ["VddkClusterPollInterval"] = "200ms",
        ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), archive),
        ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
        ["VddkForkliftProvider"] = "vcenter",
    };

    /// <summary>The manifest the registry behind the route holds for <paramref name="digest"/>: its media type, and its bytes hash to the digest.</summary>
    internal static async Task<JsonDocument> StoredManifestAsync(ClusterScenario scenario, string digest, string mediaType)
    {
        using var client = new HttpClient { BaseAddress = scenario.Cluster.RegistryOperator.Deployment!.BaseUri };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/{Repository}/manifests/{digest}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.DockerManifest));
        using var response = await client.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"GET manifest {digest}: {(int)response.StatusCode}");
        var bytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(bytes);
    }

    private static async Task<string?> TagDigestAsync(ClusterScenario scenario, string tag)
    {
        using var client = new HttpClient { BaseAddress = scenario.Cluster.RegistryOperator.Deployment!.BaseUri };
        using var request = new HttpRequestMessage(HttpMethod.Head, $"/v2/{Repository}/manifests/{tag}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.DockerManifest));
        using var response = await client.SendAsync(request);
        return response.Headers.TryGetValues("Docker-Content-Digest", out var values) ? values.Single() : null;
    }

    /// <summary>VddkClusterImageReference is the service name by the pushed digest, and the provider was given exactly that.</summary>
    internal static void AssertClusterReference(ClusterScenario scenario, IReadOnlyDictionary<string, string> outputs, string digest)
    {
        Assert.Equal($"image-registry.openshift-image-registry.svc:5000/{Repository}@{digest}", outputs["VddkClusterImageReference"]);
        var provider = scenario.Cluster.Api.Store.GetRequired(KubeResources.ForkliftProviders, "openshift-mtv", "vcenter");
        Assert.Equal(outputs["VddkClusterImageReference"], provider["spec"]!["settings"]!["vddkInitImage"]!.GetValue<string>());
    }

    /// <summary>A second run: same digest, no blob upload started, the provider unchanged.</summary>
    private static async Task AssertRerunUploadsNothingAsync(ClusterScenario scenario, SampleProject sample, Dictionary<string, string> properties, string digest)
    {
        var front = scenario.Cluster.RegistryOperator.Front;
        var before = front.PresentedTokens.Count;
        var second = await sample.RunAsync("PublishVddk", properties);
        Assert.True(second.Succeeded, second.ToString());
        Assert.Contains($"VddkImageDigest = {digest}", second.Output);
        Assert.Contains("0 blob(s) uploaded", second.Output);
        var requests = front.PresentedTokens.Skip(before).ToList();
        Assert.DoesNotContain(requests, r => r.Path.Contains("/blobs/uploads", StringComparison.Ordinal));
    }

    [SkippableFact]
    public async Task VddkImageFormat_Docker_on_the_cluster_path_stores_a_schema_2_manifest_under_the_digest_the_provider_names()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await scenario.PrepareAsync();
        var sample = new SampleProject(_work);
        var properties = Properties(scenario, SampleVddkArchiveOptions.Small);
        properties["VddkImageFormat"] = "Docker";

        var first = await sample.RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkClusterImageReference");

        var digest = first["VddkImageDigest"];
        using (var manifest = await StoredManifestAsync(scenario, digest, MediaTypes.DockerManifest))
        {
            Assert.Equal(MediaTypes.DockerConfig, manifest.RootElement.GetProperty("config").GetProperty("mediaType").GetString());
        }
        AssertClusterReference(scenario, first, digest);
        Assert.Equal(0, scenario.Cluster.RegistryOperator.Front.RefusedManifestPuts);
        await AssertRerunUploadsNothingAsync(scenario, sample, properties, digest);
    }

    [SkippableFact]
    public async Task A_cluster_registry_that_refuses_OCI_manifests_gets_Docker_schema_2_and_the_provider_names_that_digest()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await scenario.PrepareAsync();
        var front = scenario.Cluster.RegistryOperator.Front;
        // As distribution configured without OCI support answers.
        front.RefuseManifestPuts(MediaTypes.OciManifest, 400,
            """{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported manifest media type and no default available: application/vnd.oci.image.manifest.v1+json"}]}""");
        var sample = new SampleProject(_work);
        var properties = Properties(scenario, SampleVddkArchiveOptions.Small);
        properties["VddkImageTags"] = "8.0.1%3Blatest";

        var first = await sample.RunAsync("PublishVddk", properties, "-getProperty:VddkImageDigest", "-getProperty:VddkClusterImageReference");
        Assert.True(first.Succeeded, first.ToString());
        var outputs = JsonDocument.Parse(first.Output[first.Output.IndexOf('{')..]).RootElement.GetProperty("Properties")
            .EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? string.Empty);

        var digest = outputs["VddkImageDigest"];
        Assert.True(front.RefusedManifestPuts >= 1, "the OCI manifest should have been offered first");
        using (await StoredManifestAsync(scenario, digest, MediaTypes.DockerManifest))
        {
        }
        // Every tag names the Docker form (none is left on a refused or other digest).
        foreach (var tag in new[] { "8.0.1", "latest" })
        {
            Assert.Equal(digest, await TagDigestAsync(scenario, tag));
        }
        AssertClusterReference(scenario, outputs, digest);
        await AssertRerunUploadsNothingAsync(scenario, sample, properties, digest);
    }

    [SkippableFact]
    public async Task VddkAddSoname8Link_on_the_cluster_path_pushes_a_vddk9_layer_with_the_so_8_link()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await scenario.PrepareAsync();
        var sample = new SampleProject(_work);
        var properties = Properties(scenario, SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 2_000_000, DocumentationPages = 20 });
        properties["VddkAddSoname8Link"] = "true";
        properties["VddkImageTags"] = "9.0.0.0";

        var first = await sample.RunForPropertiesAsync("PublishVddk", properties, "VddkImageDigest", "VddkClusterImageReference", "VddkVersion");

        var digest = first["VddkImageDigest"];
        Assert.Equal("9.0.0.0", first["VddkVersion"]);
        string layerDigest;
        using (var manifest = await StoredManifestAsync(scenario, digest, MediaTypes.OciManifest))
        {
            layerDigest = manifest.RootElement.GetProperty("layers").EnumerateArray().Last().GetProperty("digest").GetString()!;
        }
        // The registry redirects blob reads to the bucket, behind its route (ingress CA).
        var trust = new System.Security.Cryptography.X509Certificates.X509ChainPolicy { TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust, RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck };
        trust.CustomTrustStore.Add(scenario.Cluster.Ingress.Certificates.Authority);
        using var handler = new SocketsHttpHandler { SslOptions = { CertificateChainPolicy = trust } };
        using (var client = new HttpClient(handler) { BaseAddress = scenario.Cluster.RegistryOperator.Deployment!.BaseUri })
        {
            await using var blob = await client.GetStreamAsync($"/v2/{Repository}/blobs/{layerDigest}");
            await using var gzip = new GZipStream(blob, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            var links = new Dictionary<string, string>();
            while (await tar.GetNextEntryAsync() is { } entry)
            {
                if (entry.EntryType == TarEntryType.SymbolicLink)
                {
                    links[entry.Name.TrimStart('.', '/')] = entry.LinkName;
                }
            }
            var so8 = Assert.Single(links, l => l.Key.EndsWith("lib64/libvixDiskLib.so.8", StringComparison.Ordinal));
            Assert.Equal("libvixDiskLib.so.9.0.0.0", so8.Value);
        }
        AssertClusterReference(scenario, first, digest);
        await AssertRerunUploadsNothingAsync(scenario, sample, properties, digest);
    }

    [SkippableFact]
    public async Task An_invalid_VddkImageFormat_on_the_cluster_path_is_VDDK5002_before_the_cluster_is_asked_anything()
    {
        // A cluster whose registry is not prepared: asked first, it would answer "no route" (VDDK4015) and hide the typo.
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        var sample = new SampleProject(_work);
        var properties = Properties(scenario, SampleVddkArchiveOptions.Small);
        properties["VddkImageFormat"] = "OCIv1";

        var result = await sample.RunAsync("PublishVddk", properties);

        Assert.False(result.Succeeded);
        Assert.Contains("error VDDK5002", result.Output);
        Assert.Contains("VddkImageFormat", result.Output);
        Assert.DoesNotContain("VDDK4015", result.Output);
        Assert.Empty(scenario.Cluster.Api.MutatingRequests);
    }

    [SkippableFact]
    public async Task The_SDKs_password_variables_get_the_VDDK3903_warning_on_the_cluster_path_too()
    {
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await scenario.PrepareAsync();
        const string password = "cluster-path-sdk-pull-password-7d1c";
        var sample = new SampleProject(_work)
        {
            // A pipeline moved over from PublishContainer still sets the SDK's pull password (for a base on registry.redhat.io).
            Environment = new Dictionary<string, string?> { ["DOTNET_CONTAINER_PULL_REGISTRY_UNAME"] = "pipeline", ["DOTNET_CONTAINER_PULL_REGISTRY_PWORD"] = password },
        };

        var result = await sample.RunAsync("PublishVddk", Properties(scenario, SampleVddkArchiveOptions.Small));

        Assert.True(result.Succeeded, result.ToString());
        Assert.Contains("warning VDDK3903: The registry password in DOTNET_CONTAINER_PULL_REGISTRY_PWORD is recorded", result.Output);
        Assert.DoesNotContain(password, result.Output);
    }
}
