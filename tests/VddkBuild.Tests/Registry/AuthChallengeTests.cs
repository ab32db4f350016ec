using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class AuthChallengeTests
{
    [Fact]
    public void Parse_BearerChallenge_ReadsRealmServiceAndScopeWithCommas()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:a/b:pull,push\"");

        Assert.True(challenge.IsBearer);
        Assert.Equal("https://auth.example/token", challenge.Realm);
        Assert.Equal("registry.example", challenge.Service);
        Assert.Equal(["repository:a/b:pull,push"], challenge.Scopes);
        Assert.False(challenge.IsOpenShift);
    }

    [Fact]
    public void Parse_HandlesSpacesUnquotedValuesEscapesAndErrorParameter()
    {
        var challenge = AuthChallenge.Parse("Bearer realm=\"https://a/t\", service=svc , error=\"insufficient_scope\", scope=\"repository:x:pull repository:y:pull\", x=\"q\\\"uote\"");

        Assert.Equal("svc", challenge.Service);
        Assert.Equal("insufficient_scope", challenge.Parameters["error"]);
        Assert.Equal(["repository:x:pull", "repository:y:pull"], challenge.Scopes);
        Assert.Equal("q\"uote", challenge.Parameters["x"]);
    }

    [Fact]
    public void Parse_Basic()
    {
        var challenge = AuthChallenge.Parse("Basic realm=\"Registry Realm\"");

        Assert.True(challenge.IsBasic);
        Assert.Equal("Registry Realm", challenge.Realm);
    }

    [Theory]
    [InlineData("Bearer realm=\"https://default-route-openshift-image-registry.apps.c.example/openshift/token\"", true)]
    [InlineData("Bearer realm=\"https://r.example/openshift/token/\"", true)]
    [InlineData("Bearer realm=\"https://r.example/token\",service=\"r\"", false)]
    [InlineData("Basic realm=\"/openshift/token\"", false)]
    public void IsOpenShift_RecognisesTheOpenShiftTokenRealm(string header, bool expected)
    {
        Assert.Equal(expected, AuthChallenge.Parse(header).IsOpenShift);
    }

    /// <summary>zot names its token endpoint by a path; .NET on Unix would read "/path" as a file: URI.</summary>
    [Theory]
    [InlineData("/zot/auth/token", "https://r.example:5000/zot/auth/token")]
    [InlineData("token?account=x", "https://r.example:5000/v2/a/b/blobs/token?account=x")]
    [InlineData("https://auth.example/token", "https://auth.example/token")]
    [InlineData("file:///etc/token", "file:///etc/token")]
    public void ResolveRealm_MakesARelativeRealmAbsoluteAgainstTheChallengedUri(string realm, string expected)
    {
        var challenge = AuthChallenge.Parse($"Bearer realm=\"{realm}\",service=\"zot\",scope=\"repository:a/b:pull\"");

        var resolved = challenge.ResolveRealm(new Uri("https://r.example:5000/v2/a/b/blobs/sha256:00"));

        Assert.Equal(expected, resolved.Realm);
        Assert.Equal("zot", resolved.Service);
        Assert.Equal(["repository:a/b:pull"], resolved.Scopes);
    }

    [Fact]
    public void FromResponse_PrefersBearerOverBasic()
    {
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.Unauthorized);
        response.Headers.TryAddWithoutValidation("WWW-Authenticate", "Basic realm=\"x\"");
        response.Headers.TryAddWithoutValidation("WWW-Authenticate", "Bearer realm=\"https://a/t\",service=\"s\"");

        var challenges = AuthChallenge.FromResponse(response);

        Assert.True(challenges[0].IsBearer);
        Assert.Equal("s", challenges[0].Service);
    }
}
