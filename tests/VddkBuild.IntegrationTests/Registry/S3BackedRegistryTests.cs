using VddkBuild.Images;
using VddkBuild.Publishing;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// The registry on its S3 storage driver backed by real Ceph RGW, as OpenShift's registry runs on an ODF/NooBaa
/// bucket: the VDDK image built from a sample archive is pushed, and its blobs are objects in the bucket.
/// </summary>
[Collection(CephRgw.CollectionName)]
public sealed class S3BackedRegistryTests(CephRgw ceph, ITestOutputHelper output)
{
    [SkippableFact]
    public async Task A_VDDK_image_pushed_to_a_registry_on_Ceph_RGW_lands_in_the_bucket_and_reads_back()
    {
        ceph.Require();
        Requires.Tool("docker-registry");
        Skopeo.Require();
        await using var context = new RegistryTestContext(output);
        var bucket = CephRgw.UniqueBucketName("registry");
        await ceph.CreateBucketAsync(bucket);
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions
        {
            S3 = new RegistryS3Settings(ceph.AccessKey, ceph.SecretKey, ceph.Endpoint, bucket),
        }));
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var archive = SampleVddkArchive.WriteTo(Path.Combine(context.Directory, "in"), SampleVddkArchiveOptions.Small);
        await using var baseSource = new OciLayoutSource(StandInBaseImage.WriteOciLayout(Path.Combine(context.Directory, "base")).Location, "latest");
        var built = await VddkImagePipeline.BuildAsync(new VddkImageRequest
        {
            ArchivePath = archive,
            BaseSource = baseSource,
            WorkDirectory = Path.Combine(context.Directory, "work"),
        }, context.Log, CancellationToken.None);
        var target = ImageReference.ForRepository(registry.Authority, "openshift-mtv/vddk");

        var pushed = await new ImagePusher(session).PushAsync(built.Image, baseSource, target, ["8.0.1"], new PushOptions(), context.Log, CancellationToken.None);

        var objects = (await ceph.ListObjectsAsync(bucket)).Select(o => o.Key).ToHashSet();
        output.WriteLine(string.Join("\n", objects));
        foreach (var blob in built.Image.Layers.Select(l => l.Digest).Append(built.Image.ConfigDescriptor.Digest))
        {
            // The driver keeps its docker/registry/v2 tree under the configured root directory (/docker).
            Assert.Contains($"docker/docker/registry/v2/blobs/sha256/{blob.Hex[..2]}/{blob.Hex}/data", objects);
        }
        Assert.Contains(objects, key => key.EndsWith($"/{pushed.Digest.Hex}/data", StringComparison.Ordinal));
        using var sandbox = new ContainerToolsSandbox();
        using var inspect = await new Skopeo(sandbox).InspectAsync($"docker://{registry.Authority}/openshift-mtv/vddk:8.0.1", RegistryAccess.Insecure);
        Assert.Equal(pushed.Digest.Value, inspect.RootElement.GetProperty("Digest").GetString());
    }
}
