using VddkBuild.Cluster;

namespace VddkBuild.IntegrationTests.Cluster;

/// <summary>VddkUseCluster=auto and the step list of PrepareVddkRegistry (no infrastructure needed).</summary>
public sealed class ClusterDetectionTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("vddk-home-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    private Func<string, string?> Environment(string? kubeconfig = null, string? serviceHost = null) => name => name switch
    {
        "HOME" => _home,
        "KUBECONFIG" => kubeconfig,
        "KUBERNETES_SERVICE_HOST" => serviceHost,
        _ => null,
    };

    [Fact]
    public void Auto_without_any_kubeconfig_does_not_use_a_cluster()
    {
        var (use, reason) = ClusterDetection.Decide("auto", null, Environment());
        Assert.False(use, reason);
    }

    [Fact]
    public void Auto_uses_the_cluster_of_an_explicit_kubeconfig_KUBECONFIG_or_the_home_kubeconfig()
    {
        Assert.True(ClusterDetection.Decide(null, "/some/kubeconfig", Environment()).Use);
        var file = Path.Combine(_home, "cluster.yaml");
        File.WriteAllText(file, "apiVersion: v1\n");
        Assert.True(ClusterDetection.Decide("", null, Environment($"/missing/one{Path.PathSeparator}{file}")).Use);
        Assert.False(ClusterDetection.Decide("auto", null, Environment("/missing/one")).Use);
        Directory.CreateDirectory(Path.Combine(_home, ".kube"));
        File.WriteAllText(Path.Combine(_home, ".kube", "config"), "apiVersion: v1\n");
        Assert.True(ClusterDetection.Decide("auto", null, Environment()).Use);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("TRUE", true)]
    [InlineData("false", false)]
    [InlineData("no", false)]
    public void An_explicit_setting_wins(string value, bool expected) =>
        Assert.Equal(expected, ClusterDetection.Decide(value, expected ? null : "/some/kubeconfig", Environment()).Use);

    [Fact]
    public void An_unknown_setting_is_a_property_error()
    {
        var error = Assert.Throws<VddkException>(() => ClusterDetection.Decide("maybe", null, Environment()));
        Assert.Equal(ErrorCodes.PropertyInvalid, error.Code);
        Assert.Contains("VddkUseCluster", error.Message);
    }

    [Fact]
    public void Steps_parse_by_name_and_unknown_names_list_the_valid_ones()
    {
        Assert.Equal(RegistryPreparationSteps.All, RegistryPreparationStepNames.Parse(""));
        Assert.Equal(RegistryPreparationSteps.CaBundle | RegistryPreparationSteps.WaitForRollout, RegistryPreparationStepNames.Parse("cabundle; WaitForRollout"));
        var error = Assert.Throws<VddkException>(() => RegistryPreparationStepNames.Parse("BucketClaim;Push"));
        Assert.Equal(ErrorCodes.PropertyInvalid, error.Code);
        Assert.Contains("'Push'", error.Message);
        Assert.Contains("VerifyBucket", error.Message);
    }

    [Theory]
    [InlineData("openshift-mtv/vddk", "openshift-mtv")]
    [InlineData(" team-a/vddk ", "team-a")]
    public void The_repository_namespace_is_its_first_segment(string repository, string ns) =>
        Assert.Equal(ns, ClusterRegistryAccess.NamespaceOf(repository));

    [Theory]
    [InlineData("vddk")]
    [InlineData("a/b/c")]
    [InlineData("/vddk")]
    public void A_repository_that_is_not_namespace_slash_name_is_refused(string repository)
    {
        var error = Assert.Throws<VddkException>(() => ClusterRegistryAccess.NamespaceOf(repository));
        Assert.Equal(ErrorCodes.PropertyInvalid, error.Code);
        Assert.Contains("namespace/name", error.Message);
    }
}
