using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using VddkBuild.IntegrationTests.Tasks;
using VddkBuild.Oci;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Kubernetes;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>
/// PublishVddk as a pipeline pod runs it: no kubeconfig, KUBERNETES_SERVICE_HOST/PORT and the kubelet's service
/// account mount, the registry reached at its service <c>image-registry.openshift-image-registry.svc:5000</c> with a
/// service-CA certificate. The build runs in a mount namespace of its own (unshare, as root) where /etc/hosts maps the
/// service name to a loopback address and the service account folder is the test's: the product is not changed to
/// reach a test registry, it resolves the name as in a pod.
/// </summary>
[Collection(MSBuildCollection.Name)]
public sealed class ClusterInPodPublishTests(CephRgw ceph, ITestOutputHelper output) : IClassFixture<CephRgw>, IDisposable
{
    private const string ServiceHost = "image-registry.openshift-image-registry.svc";
    private const string MountPoint = "/run/secrets/kubernetes.io/serviceaccount";

    private readonly string _work = Directory.CreateTempSubdirectory("vddk-cluster-pod-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    /// <summary>Runs dotnet with /etc/hosts and the service account mount replaced, in a private mount namespace.</summary>
    private static IReadOnlyList<string> PodLauncher(string hostsFile, string serviceAccountDirectory) =>
    [
        "unshare", "--mount", "--fork", "--", "sh", "-c",
        $"mount --bind \"$1\" /etc/hosts && mount -t tmpfs tmpfs /run && mkdir -p {MountPoint} && mount --bind \"$2\" {MountPoint} && shift 2 && exec dotnet \"$@\"",
        "sh", hostsFile, serviceAccountDirectory,
    ];

    private static async Task RequireMountNamespaceAsync()
    {
        var start = new ProcessStartInfo("unshare", ["--mount", "--fork", "--", "sh", "-c", "mount -t tmpfs tmpfs /run"]) { RedirectStandardError = true };
        try
        {
            using var process = Process.Start(start)!;
            await process.WaitForExitAsync();
            Skip.If(process.ExitCode != 0, "needs unshare --mount (root) to give the build a pod's /etc/hosts and service account mount: " + await process.StandardError.ReadToEndAsync());
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Skip.If(true, "unshare is not installed");
        }
    }

    /// <summary>The kubelet's layout: files are links through ..data to a timestamped folder, swapped atomically on rotation.</summary>
    private static void WriteServiceAccountFiles(string directory, IReadOnlyDictionary<string, string> files, int generation)
    {
        var version = $"..2026_11_24_00_00_{generation:00}.{Random.Shared.Next():x}";
        var folder = Directory.CreateDirectory(Path.Combine(directory, version)).FullName;
        foreach (var (name, content) in files)
        {
            File.WriteAllText(Path.Combine(folder, name), content);
        }
        var next = Path.Combine(directory, "..data_tmp");
        File.CreateSymbolicLink(next, version);
        // rename(2) over the old link, as the kubelet's AtomicWriter does (File.Move refuses a link to a folder).
        using (var rename = Process.Start("mv", ["-T", next, Path.Combine(directory, "..data")])!)
        {
            rename.WaitForExit();
            Assert.Equal(0, rename.ExitCode);
        }
        foreach (var name in files.Keys.Where(n => !File.Exists(Path.Combine(directory, n))))
        {
            File.CreateSymbolicLink(Path.Combine(directory, name), Path.Combine("..data", name));
        }
    }

    /// <summary>Serves the registry's service on 127.0.0.N:5000 (port 5000 is in the reference nodes pull), the first N free.</summary>
    private static async Task<IPAddress> ServeRegistryServiceAsync(ClusterScenario scenario, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        for (var n = 2 + Random.Shared.Next(200); ; n++)
        {
            var address = IPAddress.Parse($"127.0.0.{n}");
            try
            {
                await scenario.Cluster.RegistryOperator.Front.ServeServiceAsync(certificate, new IPEndPoint(address, 5000));
                return address;
            }
            catch (IOException ex)
            {
                Assert.True(n < 254, "no free 127.0.0.N:5000: " + ex.Message);
            }
        }
    }

    [SkippableFact]
    public async Task In_a_pod_PublishVddk_pushes_to_the_registry_service_as_the_pods_account_and_follows_the_token_the_kubelet_rotates()
    {
        await RequireMountNamespaceAsync();
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await scenario.PrepareAsync();
        var api = scenario.Cluster.Api;
        var front = scenario.Cluster.RegistryOperator.Front;
        // The pipeline's own account may push (system:image-builder) and nothing grants it TokenRequests for others.
        api.Store.Create(KubeResources.ServiceAccounts, "openshift-mtv", new JsonObject { ["metadata"] = new JsonObject { ["name"] = "pipeline", ["namespace"] = "openshift-mtv" } });
        api.Store.Create(KubeResources.RoleBindings, "openshift-mtv", new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = "pipeline-image-builder", ["namespace"] = "openshift-mtv" },
            ["roleRef"] = new JsonObject { ["apiGroup"] = "rbac.authorization.k8s.io", ["kind"] = "ClusterRole", ["name"] = "system:image-builder" },
            ["subjects"] = new JsonArray(new JsonObject { ["kind"] = "ServiceAccount", ["name"] = "pipeline", ["namespace"] = "openshift-mtv" }),
        });
        using var serviceCa = LoopbackCertificates.Create("openshift-service-serving-signer@vddkbuild-loopback", ServiceHost);
        var address = await ServeRegistryServiceAsync(scenario, serviceCa.IssueServerCertificate(ServiceHost, ServiceHost, ServiceHost + ".cluster.local"));
        var hosts = Path.Combine(_work, "hosts");
        await File.WriteAllTextAsync(hosts, $"127.0.0.1 localhost\n{address} {ServiceHost}\n");

        var audiences = new[] { "https://kubernetes.default.svc" };
        var first = api.Tokens.Issue("openshift-mtv", "pipeline", TimeSpan.FromHours(1), audiences);
        var account = Directory.CreateDirectory(Path.Combine(_work, "serviceaccount")).FullName;
        Dictionary<string, string> Files(string token) => new()
        {
            ["token"] = token,
            ["ca.crt"] = api.Certificates.AuthorityPem,
            ["service-ca.crt"] = serviceCa.AuthorityPem,
            ["namespace"] = "openshift-mtv",
        };
        WriteServiceAccountFiles(account, Files(first.Token), 1);
        // A few requests into the push the kubelet has written a new token and the old one stops working.
        string? rotated = null;
        front.ExpireIssuedTokensAfter(6, () =>
        {
            rotated = api.Tokens.Issue("openshift-mtv", "pipeline", TimeSpan.FromHours(1), audiences).Token;
            WriteServiceAccountFiles(account, Files(rotated), 2);
        });
        api.ClearRequestLog();

        var sample = new SampleProject(_work)
        {
            Launcher = PodLauncher(hosts, account),
            Environment = new Dictionary<string, string?>
            {
                ["KUBERNETES_SERVICE_HOST"] = api.BaseUri.Host,
                ["KUBERNETES_SERVICE_PORT"] = api.BaseUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["KUBECONFIG"] = null,
            },
        };
        var properties = new Dictionary<string, string>
        {
            ["VddkClusterPollInterval"] = "200ms",
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
            ["VddkForkliftProvider"] = "vcenter",
        };
        var logFile = Path.Combine(_work, "build.log");
        var result = await sample.RunAsync("PublishVddk", properties, "-getProperty:VddkImageDigest", "-getProperty:VddkClusterImageReference", "-getProperty:VddkImageReference",
            "-fl", $"-flp:LogFile={logFile};Verbosity=normal");
        var log = File.Exists(logFile) ? await File.ReadAllTextAsync(logFile) : string.Empty;
        var sequence = string.Join(' ', front.PresentedTokens.Select(r => $"{r.Method}:{(r.Token == first.Token ? "first" : r.Token == rotated ? "rotated" : r.Token is null ? "none" : "other")}"));
        Assert.True(result.Succeeded, $"{result}\ntokens the registry saw: {sequence}\n{log}");
        var outputs = JsonDocument.Parse(result.Output[result.Output.IndexOf('{')..]).RootElement.GetProperty("Properties")
            .EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? string.Empty);

        var digest = outputs["VddkImageDigest"];
        Assert.Equal($"{ServiceHost}:5000/openshift-mtv/vddk@{digest}", outputs["VddkImageReference"]);
        ClusterPublishOptionsTests.AssertClusterReference(scenario, outputs, digest);
        using (await ClusterPublishOptionsTests.StoredManifestAsync(scenario, digest, MediaTypes.OciManifest))
        {
        }
        // The registry saw the pod's first token, then the rotated one, on its service name; nothing else.
        Assert.NotNull(rotated);
        Assert.True(front.RejectedExpiredTokens > 0, "the first token should have been refused once it expired");
        var seen = front.PresentedTokens.Where(r => r.Token is not null).ToList();
        Assert.NotEmpty(seen);
        Assert.All(seen, r => Assert.Equal($"{ServiceHost}:5000", r.Host));
        Assert.All(seen, r => Assert.Contains(r.Token, new[] { first.Token, rotated }));
        Assert.Contains(seen, r => r.Token == first.Token);
        var manifestPut = Assert.Single(seen, r => r.Method == "PUT" && r.Path.Contains("/manifests/", StringComparison.Ordinal));
        Assert.Equal(rotated, manifestPut.Token);
        // No TokenRequest for another account; the pod's own account is named; no token printed.
        Assert.DoesNotContain(api.Requests, r => r.Subresource == "token");
        Assert.Contains($"Pushing to the cluster's registry service {ServiceHost}:5000 as system:serviceaccount:openshift-mtv:pipeline", log);
        foreach (var text in new[] { result.Output, log })
        {
            Assert.DoesNotContain(first.Token, text);
            Assert.DoesNotContain(rotated!, text);
        }
    }

    [SkippableFact]
    public async Task In_a_pod_VddkRegistry_set_to_the_registry_service_fails_saying_to_leave_it_empty_or_trust_the_service_CA()
    {
        await RequireMountNamespaceAsync();
        await using var scenario = await ClusterScenario.StartAsync(ceph, output);
        await scenario.PrepareAsync();
        var api = scenario.Cluster.Api;
        using var serviceCa = LoopbackCertificates.Create("openshift-service-serving-signer@vddkbuild-loopback", ServiceHost);
        var address = await ServeRegistryServiceAsync(scenario, serviceCa.IssueServerCertificate(ServiceHost, ServiceHost, ServiceHost + ".cluster.local"));
        var hosts = Path.Combine(_work, "hosts");
        await File.WriteAllTextAsync(hosts, $"127.0.0.1 localhost\n{address} {ServiceHost}\n");
        var token = api.Tokens.Issue("openshift-mtv", "builder", TimeSpan.FromHours(1), ["https://kubernetes.default.svc"]);
        var account = Directory.CreateDirectory(Path.Combine(_work, "serviceaccount")).FullName;
        WriteServiceAccountFiles(account, new Dictionary<string, string>
        {
            ["token"] = token.Token, ["ca.crt"] = api.Certificates.AuthorityPem, ["service-ca.crt"] = serviceCa.AuthorityPem, ["namespace"] = "openshift-mtv",
        }, 1);
        var sample = new SampleProject(_work)
        {
            Launcher = PodLauncher(hosts, account),
            Environment = new Dictionary<string, string?>
            {
                ["KUBERNETES_SERVICE_HOST"] = api.BaseUri.Host,
                ["KUBERNETES_SERVICE_PORT"] = api.BaseUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["KUBECONFIG"] = null,
            },
        };
        var properties = new Dictionary<string, string>
        {
            // As buildah pipelines name the internal registry.
            ["VddkRegistry"] = ServiceHost + ":5000",
            ["VddkArchive"] = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small),
            ["VddkBaseImage"] = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference,
        };
        const string Hint = "is the OpenShift registry's service, reached from pods: leave VddkRegistry empty and PublishVddk pushes to it as the pod's own service account";

        // The service CA is not trusted for an explicit registry: VDDK3003, pointing at the service CA, not the ingress CA.
        var untrusted = await sample.RunAsync("PublishVddk", properties);
        Assert.False(untrusted.Succeeded);
        Assert.Contains("error VDDK3003", untrusted.Output);
        Assert.Contains(Hint, untrusted.Output);
        Assert.Contains($"VddkRegistryCaBundle={MountPoint.Replace("/run/", "/var/run/", StringComparison.Ordinal)}/service-ca.crt", untrusted.Output);

        // Trusted, but no credentials for it (the pod's token is not sent to an explicit VddkRegistry): VDDK3002, same hint.
        properties["VddkRegistryCaBundle"] = $"{MountPoint}/service-ca.crt";
        var anonymous = await sample.RunAsync("PublishVddk", properties);
        Assert.False(anonymous.Succeeded);
        Assert.Contains("error VDDK3002", anonymous.Output);
        Assert.Contains(Hint, anonymous.Output);
        Assert.DoesNotContain(scenario.Cluster.RegistryOperator.Front.PresentedTokens, r => r.Token == token.Token);
        Assert.DoesNotContain(token.Token, untrusted.Output + anonymous.Output);
    }
}
