using System.Text;
using Microsoft.AspNetCore.Http;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>Basic (htpasswd), bearer tokens (JWT the registry verifies) and the OpenShift-style token front.</summary>
public sealed class RegistryAuthTests(ITestOutputHelper output)
{
    private const string User = "builder";
    private const string Password = "s3cret-Pa55word-never-logged";
    private static readonly CancellationToken None = CancellationToken.None;

    private static async Task<DockerRegistryProcess> StartHtpasswdRegistryAsync(RegistryTestContext context) =>
        context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { HtpasswdUsers = new Dictionary<string, string> { [User] = Password } }));

    private static async Task<VddkBuild.Registry.PushResult> PushSmallImageAsync(RegistryTestContext context, RegistrySession session, string authority, string repository)
    {
        var (image, blobs) = context.MakeBase(repository.Replace('/', '-'), Environment.TickCount);
        return await new ImagePusher(session).PushAsync(image, blobs, ImageReference.ForRepository(authority, repository), ["1"], new PushOptions(), context.Log, None);
    }

    private static void AssertNoSecret(RegistryTestContext context, string secret, Exception? error = null)
    {
        Assert.DoesNotContain(secret, context.Log.AllText);
        if (error is not null)
        {
            Assert.DoesNotContain(secret, error.ToString());
        }
    }

    [SkippableFact]
    public async Task Htpasswd_WithCredentialsFromPushEnvironmentVariables_Pushes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = await StartHtpasswdRegistryAsync(context);
        context.Environment[EnvironmentCredentialProvider.PushUserVariable] = User;
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = Password;
        context.Environment[EnvironmentCredentialProvider.PullUserVariable] = User;
        context.Environment[EnvironmentCredentialProvider.PullPasswordVariable] = Password;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var result = await PushSmallImageAsync(context, session, registry.Authority, "auth/env");

        var pulled = await new RegistryImageSource(session, result.PinnedReference).ResolveAsync(Platform.LinuxAmd64, None);
        Assert.Equal(result.Digest, pulled.ManifestDescriptor.Digest);
        AssertNoSecret(context, Password);
    }

    [SkippableFact]
    public async Task Htpasswd_WithCredentialsFromDockerConfigInDockerConfigFolder_Pushes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = await StartHtpasswdRegistryAsync(context);
        var dockerConfig = Path.Combine(context.Directory, "docker-config");
        Directory.CreateDirectory(dockerConfig);
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}"));
        await File.WriteAllTextAsync(Path.Combine(dockerConfig, "config.json"), $"{{\"auths\":{{\"http://{registry.Authority}/v2/\":{{\"auth\":\"{auth}\"}}}}}}");
        context.Environment["DOCKER_CONFIG"] = dockerConfig;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var result = await PushSmallImageAsync(context, session, registry.Authority, "auth/docker-config");

        Assert.Equal(3, result.Uploaded);
        Assert.Contains(context.Log.Lines, l => l.Message.Contains("config.json", StringComparison.Ordinal) && l.Message.Contains(User, StringComparison.Ordinal));
        AssertNoSecret(context, Password);
    }

    [SkippableFact]
    public async Task Htpasswd_WithPodmanAuthFileUnderXdgRuntimeDir_Pushes()
    {
        await using var context = new RegistryTestContext(output);
        var registry = await StartHtpasswdRegistryAsync(context);
        var runtime = Path.Combine(context.Directory, "run");
        Directory.CreateDirectory(Path.Combine(runtime, "containers"));
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}"));
        await File.WriteAllTextAsync(Path.Combine(runtime, "containers", "auth.json"), $"{{\"auths\":{{\"{registry.Authority}\":{{\"auth\":\"{auth}\"}}}}}}");
        context.Environment["XDG_RUNTIME_DIR"] = runtime;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var result = await PushSmallImageAsync(context, session, registry.Authority, "auth/podman");

        Assert.Equal(3, result.Uploaded);
    }

    [SkippableFact]
    public async Task Htpasswd_WithoutCredentials_FailsWithAuthFailed_AndWrongPasswordIsRejectedWithoutLeakingIt()
    {
        await using var context = new RegistryTestContext(output);
        var registry = await StartHtpasswdRegistryAsync(context);
        using (var anonymous = context.Session(RegistryTestContext.Insecure(registry.Authority)))
        {
            var error = await Assert.ThrowsAsync<VddkException>(() => PushSmallImageAsync(context, anonymous, registry.Authority, "auth/none"));
            Assert.Equal(ErrorCodes.RegistryAuthFailed, error.Code);
            // It points to the variable MSBuild does not log, never to the SDK's (see README "Secrets").
            Assert.Contains(EnvironmentCredentialProvider.PasswordVariable, error.Message);
            Assert.DoesNotContain(EnvironmentCredentialProvider.PushPasswordVariable, error.Message);
        }

        const string wrong = "wrong-password-value-xyz";
        context.Environment[EnvironmentCredentialProvider.PushUserVariable] = User;
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = wrong;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var rejected = await Assert.ThrowsAsync<VddkException>(() => PushSmallImageAsync(context, session, registry.Authority, "auth/wrong"));
        Assert.Equal(ErrorCodes.RegistryAuthFailed, rejected.Code);
        Assert.Contains(User, rejected.Message);
        AssertNoSecret(context, wrong, rejected);
    }

    [SkippableFact]
    public async Task BearerTokens_FromTokenServer_PushAndPull_WithGetRequestsCarryingBasicAuth()
    {
        await using var context = new RegistryTestContext(output);
        var tokens = context.Own(await TestTokenServer.StartAsync(Path.Combine(context.Directory, "token"), new Dictionary<string, string> { [User] = Password }));
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Token = tokens.Settings }));
        context.Environment[EnvironmentCredentialProvider.PushUserVariable] = User;
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = Password;
        context.Environment[EnvironmentCredentialProvider.PullUserVariable] = User;
        context.Environment[EnvironmentCredentialProvider.PullPasswordVariable] = Password;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var (baseImage, baseSource) = await RegistryPushPullTests.PushBaseAsync(context, session, registry.Authority, "tokens/base", 21);
        var image = context.Derive(baseImage, 22);
        var result = await new ImagePusher(session).PushAsync(image, baseSource, ImageReference.ForRepository(registry.Authority, "tokens/vddk"), ["1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.NotEmpty(tokens.Requests);
        Assert.All(tokens.Requests, r => Assert.Equal("GET", r.Method));
        Assert.All(tokens.Requests, r => Assert.True(r.PasswordAccepted));
        Assert.Contains(tokens.Requests, r => r.Scopes.Contains("repository:tokens/vddk:pull,push"));
        Assert.Contains(tokens.Requests, r => r.Scopes.Contains("repository:tokens/base:pull"));
        // Tokens are cached per scope: far fewer token requests than registry requests.
        Assert.True(tokens.Requests.Count < result.RequestCount / 2, $"{tokens.Requests.Count} token requests for {result.RequestCount} requests");
        AssertNoSecret(context, Password);
    }

    [SkippableFact]
    public async Task IdentityTokenInDockerConfig_IsExchangedByTheRefreshGrant_AndPushes()
    {
        await using var context = new RegistryTestContext(output);
        const string refresh = "identity-refresh-token-7c2e";
        var tokens = context.Own(await TestTokenServer.StartAsync(Path.Combine(context.Directory, "token"), new Dictionary<string, string>()));
        tokens.RefreshTokens[refresh] = User;
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Token = tokens.Settings }));
        var configDirectory = Path.Combine(context.Directory, "docker");
        Directory.CreateDirectory(configDirectory);
        // What `az acr login` / an OAuth `docker login` writes: a placeholder user in "auth" and the identity token.
        var placeholder = Convert.ToBase64String("00000000-0000-0000-0000-000000000000:"u8);
        await File.WriteAllTextAsync(Path.Combine(configDirectory, "config.json"),
            $"{{\"auths\": {{\"{registry.Authority}\": {{\"auth\": \"{placeholder}\", \"identitytoken\": \"{refresh}\"}}}}}}");
        context.Environment["DOCKER_CONFIG"] = configDirectory;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var result = await PushSmallImageAsync(context, session, registry.Authority, "identity/vddk");

        Assert.NotEmpty(result.Tags);
        Assert.NotEmpty(tokens.Requests);
        Assert.All(tokens.Requests, r => Assert.Equal("POST", r.Method));
        Assert.All(tokens.Requests, r => Assert.True(r.PasswordAccepted));
        Assert.Contains(tokens.Requests, r => r.Scopes.Contains("repository:identity/vddk:pull,push"));
        AssertNoSecret(context, refresh);
    }

    [SkippableFact]
    public async Task BearerTokens_WhenTokenServerGrantsPullOnly_PushFailsWithDeniedNamingTheScope()
    {
        await using var context = new RegistryTestContext(output);
        var tokens = context.Own(await TestTokenServer.StartAsync(Path.Combine(context.Directory, "token"), new Dictionary<string, string> { [User] = Password }));
        tokens.Grant = (_, _, actions) => [.. actions.Where(a => a == "pull")];
        var registry = context.Own(await DockerRegistryProcess.StartAsync(new DockerRegistryOptions { Token = tokens.Settings }));
        context.Environment[EnvironmentCredentialProvider.PushUserVariable] = User;
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = Password;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));

        var error = await Assert.ThrowsAsync<VddkException>(() => PushSmallImageAsync(context, session, registry.Authority, "tokens/denied"));

        Assert.Equal(ErrorCodes.RegistryDenied, error.Code);
        Assert.Contains("tokens/denied", error.Message);
        Assert.Contains("push", error.Message);
    }

    [SkippableFact]
    public async Task OpenShiftFront_TokenAsPasswordWithAnyUserName_Pushes_AndNeverPostsToTheRealm()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var front = context.Own(await OpenShiftAuthFront.StartAsync(registry.BaseUri));
        const string token = "sha256~service-account-token-value";
        front.AddToken(token);
        var inProcess = new StaticCredentialProvider();
        inProcess.Set(front.Authority, new RegistryCredential("unused", token, "cluster token"));
        using var session = context.Session(RegistryTestContext.Insecure(front.Authority), inProcess);

        var (baseImage, baseSource) = await RegistryPushPullTests.PushBaseAsync(context, session, front.Authority, "openshift-mtv/base", 31);
        var image = context.Derive(baseImage, 32);
        var result = await new ImagePusher(session).PushAsync(image, baseSource, ImageReference.ForRepository(front.Authority, "openshift-mtv/vddk"), ["8.0.1"], new PushOptions(), context.Log, None);

        Assert.Equal(image.Digest, result.Digest);
        Assert.Equal(0, front.RealmPosts);
        Assert.True(front.RealmGets is > 0 and <= 2, $"{front.RealmGets} token requests: the OpenShift token is cached per registry, not per scope");
        AssertNoSecret(context, token);
    }

    [SkippableFact]
    public async Task OpenShiftFront_UnknownToken_FailsWithAuthFailed_AndPullOnlyTokenIsDenied()
    {
        await using var context = new RegistryTestContext(output);
        var registry = context.Own(await DockerRegistryProcess.StartAsync());
        var front = context.Own(await OpenShiftAuthFront.StartAsync(registry.BaseUri));
        const string unknown = "sha256~not-a-valid-token";
        context.Environment[EnvironmentCredentialProvider.PushUserVariable] = "anyone";
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = unknown;
        using (var session = context.Session(RegistryTestContext.Insecure(front.Authority)))
        {
            var error = await Assert.ThrowsAsync<VddkException>(() => PushSmallImageAsync(context, session, front.Authority, "openshift-mtv/vddk"));
            Assert.Equal(ErrorCodes.RegistryAuthFailed, error.Code);
            AssertNoSecret(context, unknown, error);
        }

        const string pullOnly = "sha256~pull-only-token";
        front.AddToken(pullOnly, canPush: false);
        context.Environment[EnvironmentCredentialProvider.PushPasswordVariable] = pullOnly;
        using var pullSession = context.Session(RegistryTestContext.Insecure(front.Authority));
        var denied = await Assert.ThrowsAsync<VddkException>(() => PushSmallImageAsync(context, pullSession, front.Authority, "openshift-mtv/vddk"));
        Assert.Equal(ErrorCodes.RegistryDenied, denied.Code);
        Assert.Contains("openshift-mtv/vddk", denied.Message);
        Assert.Equal(0, front.RealmPosts);
    }

    /// <summary>
    /// <c>podman login quay.io/org-a</c> (a robot account per organization, as Quay, Harbor and GitLab deploy tokens
    /// are used) stores an auth.json entry for that namespace only, beside the registry's own: each repository is
    /// sent the credentials of its most specific entry, as podman sends them, and no organization gets another's.
    /// </summary>
    [SkippableFact]
    public async Task NamespacedAuthFileEntries_EachServeTheirOwnNamespace_AsPodmanReadsThem()
    {
        await using var context = new RegistryTestContext(output);
        static string Basic(string user, string password) => "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));
        var accepted = new Dictionary<string, string>
        {
            ["org-a"] = Basic("robot-a", "secret-a"),
            ["org-b"] = Basic("robot-b", "secret-b"),
            ["org-c"] = Basic("person", "secret-person"),
        };
        var registry = context.Own(await LoopbackWebServer.StartAsync(async http =>
        {
            var organization = http.Request.Path.Value!.Split('/') is [_, "v2", var org, ..] ? org : string.Empty;
            if (!accepted.TryGetValue(organization, out var wanted) || http.Request.Headers.Authorization.ToString() != wanted)
            {
                http.Response.StatusCode = 401;
                http.Response.Headers.WWWAuthenticate = "Basic realm=\"registry\"";
                return;
            }
            switch (http.Request.Method)
            {
                case "HEAD":
                    http.Response.StatusCode = 404;
                    break;
                case "POST":
                    http.Response.StatusCode = 202;
                    http.Response.Headers.Location = http.Request.Path.Value + "session-1";
                    break;
                default:
                    await http.Request.Body.CopyToAsync(Stream.Null);
                    http.Response.StatusCode = 201;
                    break;
            }
        }));
        var authFile = Path.Combine(context.Directory, "auth.json");
        await File.WriteAllTextAsync(authFile, $$$"""
            {"auths": {
              "{{{registry.Authority}}}/org-a": {"auth": "{{{accepted["org-a"][6..]}}}"},
              "{{{registry.Authority}}}": {"auth": "{{{accepted["org-c"][6..]}}}"},
              "{{{registry.Authority}}}/org-b/team": {"auth": "{{{accepted["org-b"][6..]}}}"}
            }}
            """);
        context.Environment["REGISTRY_AUTH_FILE"] = authFile;
        using var session = context.Session(RegistryTestContext.Insecure(registry.Authority));
        var content = Encoding.ASCII.GetBytes("a blob for each organization");
        var blob = new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = Digest.Compute(content), Size = content.Length };

        foreach (var repository in new[] { "org-a/vddk", "org-b/team/vddk", "org-c/vddk", "org-a/other/vddk" })
        {
            var result = await new BlobUploader(session.GetClient(registry.Authority), repository, new PushOptions(), context.Log)
                .PushAsync(blob, "blob", _ => Task.FromResult<Stream>(new MemoryStream(content)), mountFrom: null, None);
            Assert.Equal(BlobOutcome.Uploaded, result.Outcome);
        }
        AssertNoSecret(context, "secret-");
    }
}
