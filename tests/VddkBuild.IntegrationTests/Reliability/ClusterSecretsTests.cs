using System.Text.Json.Nodes;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes;
using VddkBuild.TestSupport.Kubernetes.Simulators;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>
/// PrepareVddkRegistry + PublishVddk against the simulated OpenShift (Ceph RGW behind it) with <c>-bl</c> and
/// <c>-v:diag</c>: the service-account tokens, the S3 secret keys and the kubeconfig's token appear nowhere - console,
/// replayed binary log, its records, files under obj/, bin/ and TMPDIR; the push tokens are 10-minute tokens.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class ClusterSecretsTests(CephRgw ceph, ITestOutputHelper output) : IClassFixture<CephRgw>, IAsyncLifetime
{
    private static readonly string SampleProjectDirectory = Path.Combine(DotnetCli.RepoRoot, "samples", "PublishVddk");

    private readonly string _work = Directory.CreateTempSubdirectory("vddk-cluster-secrets-").FullName;
    private SimulatedOpenShift? _cluster;

    public async Task InitializeAsync()
    {
        ceph.Require();
        _cluster = await SimulatedOpenShift.StartAsync(ceph);
    }

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
        Directory.Delete(_work, recursive: true);
    }

    [SkippableFact]
    public async Task Prepare_and_publish_against_the_cluster_with_binlog_and_diag_leak_no_token_or_S3_key()
    {
        var api = _cluster!.Api;
        var sample = new SampleBuild(Path.Combine(_work, "build"));
        var binlog = Path.Combine(_work, "cluster.binlog");
        var properties = new Dictionary<string, string>
        {
            ["VddkKubeconfig"] = _cluster.KubeconfigPath,
            ["VddkBucketName"] = CephRgw.UniqueBucketName("secrets"),
            ["VddkClusterPollInterval"] = "200ms",
            ["VddkRegistryRolloutTimeout"] = "60s",
            ["VddkPrepareRegistry"] = "true",
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
        };

        var run = await sample.RunAsync("PublishVddk", properties, "-bl:" + binlog, "-v:diag");
        var replay = await DotnetCli.RunAsync(_work, ["msbuild", binlog, "-v:diag", "-nologo"]);
        output.WriteLine($"PublishVddk against the cluster: exit {run.ExitCode}, {run.Elapsed.TotalSeconds:0.0} s, {api.Tokens.Issued.Count} token(s) issued");

        Assert.True(run.Succeeded, run.ToString());
        Assert.Contains("VddkImageDigest =", replay.Output);
        var pushTokens = api.Tokens.Issued.Where(t => t.Namespace == "openshift-mtv").ToList();
        Assert.NotEmpty(pushTokens);
        // Short-lived: what PublishVddk asked for is a 10-minute token (exp - iat in the token the API server issued).
        Assert.All(pushTokens, t => Assert.Equal(600, Lifetime(t.Token)));

        var secrets = new List<string> { ceph.SecretKey };
        secrets.AddRange(api.Tokens.Issued.Select(t => t.Token));
        secrets.Add(SecretValue(api.Store.GetRequired(KubeResources.Secrets, "openshift-image-registry", "openshift-image-registry"), "AWS_SECRET_ACCESS_KEY"));
        secrets.Add(SecretValue(api.Store.GetRequired(KubeResources.Secrets, "openshift-image-registry", "image-registry-private-configuration-user"), "REGISTRY_STORAGE_S3_SECRETKEY"));
        var kubeconfigToken = File.ReadAllLines(_cluster.KubeconfigPath).Select(l => l.Trim()).First(l => l.StartsWith("token:", StringComparison.Ordinal))["token:".Length..].Trim();
        secrets.Add(kubeconfigToken);
        Assert.All(secrets, s => Assert.True(s.Length >= 16, "a secret too short to search for"));
        var scan = new SecretScan([.. secrets.Distinct()]);

        scan.AssertNotIn(run.Output, "the console output (-v:diag)");
        scan.AssertNotIn(replay.Output, "the replayed binary log (-v:diag)");
        scan.AssertNotInBytes(SecretScan.Gunzip(File.ReadAllBytes(binlog)), "the binary log's records");
        scan.AssertNotInFiles(sample.IntermediateDirectory);
        scan.AssertNotInFiles(sample.OutputDirectory);
        scan.AssertNotInFiles(sample.TempDirectory);
        scan.AssertNotInFiles(Path.Combine(SampleProjectDirectory, "obj"));
        scan.AssertNotInFiles(Path.Combine(SampleProjectDirectory, "bin"));
    }

    private static long Lifetime(string jwt)
    {
        var payload = jwt.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
        var claims = JsonNode.Parse(Convert.FromBase64String(payload))!;
        return claims["exp"]!.GetValue<long>() - claims["iat"]!.GetValue<long>();
    }

    private static string SecretValue(JsonObject secret, string key) =>
        secret["data"]?[key] is { } data
            ? System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(data.GetValue<string>()))
            : secret["stringData"]![key]!.GetValue<string>();
}
