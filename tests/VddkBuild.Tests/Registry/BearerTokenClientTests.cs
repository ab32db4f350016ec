using System.Text;
using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class BearerTokenClientTests
{
    private static readonly Uri Realm = new("https://auth.example/token");

    [Fact]
    public void BuildUri_AddsServiceAndEveryScope_Escaped()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://auth.example/token\",service=\"reg.example\"");

        var uri = BearerTokenClient.BuildUri(Realm, challenge, ["repository:a/b:pull,push", "repository:base:pull"]);

        Assert.Equal("https://auth.example/token?service=reg.example&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository%3Abase%3Apull", uri.AbsoluteUri);
    }

    [Fact]
    public void BuildUri_KeepsTheRealmsOwnQuery()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://auth.example/token?account=x\",service=\"s\"");

        var uri = BearerTokenClient.BuildUri(new Uri(challenge.Realm!), challenge, []);

        Assert.Equal("https://auth.example/token?account=x&service=s", uri.AbsoluteUri);
    }

    [Fact]
    public void BuildUri_ForOpenShift_SendsNoServiceOrScope()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://r.apps.example/openshift/token\"");

        var uri = BearerTokenClient.BuildUri(new Uri(challenge.Realm!), challenge, ["repository:a:pull,push"]);

        Assert.Equal("https://r.apps.example/openshift/token", uri.AbsoluteUri);
    }

    [Theory]
    [InlineData("{\"token\":\"T1\",\"expires_in\":300}", "T1", 300)]
    [InlineData("{\"access_token\":\"T2\"}", "T2", 60)]
    [InlineData("{\"token\":\"\",\"access_token\":\"T3\",\"expires_in\":0}", "T3", 60)]
    public void ParseTokenResponse_ReadsTokenOrAccessTokenAndExpiry(string json, string token, int seconds)
    {
        var (parsed, lifetime) = BearerTokenClient.ParseTokenResponse(Encoding.UTF8.GetBytes(json), "r", Realm);

        Assert.Equal(token, parsed);
        Assert.Equal(TimeSpan.FromSeconds(seconds), lifetime);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("not json")]
    [InlineData("[\"token\"]")]
    public void ParseTokenResponse_WithoutToken_FailsWithResponseInvalid(string json)
    {
        var error = Assert.Throws<VddkException>(() => BearerTokenClient.ParseTokenResponse(Encoding.UTF8.GetBytes(json), "r", Realm));

        Assert.Equal(ErrorCodes.RegistryResponseInvalid, error.Code);
    }
}
