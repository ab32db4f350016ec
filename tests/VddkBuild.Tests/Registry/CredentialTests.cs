using System.Text;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Registry;

public sealed class DockerConfigCredentialsTests
{
    private static string Auth(string user, string password) => Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));

    [Fact]
    public void Parse_ReadsBase64AuthForHostKeysWithAndWithoutScheme()
    {
        var json = $$$"""
            {"auths": {
              "https://index.docker.io/v1/": {"auth": "{{{Auth("hub", "p1")}}}"},
              "http://127.0.0.1:5000/v2/": {"auth": "{{{Auth("local", "p:with:colons")}}}"},
              "quay.io": {"username": "q", "password": "p3"},
              "empty.example": {}
            }}
            """;

        var file = DockerConfigCredentials.Parse(json, "config.json");

        Assert.Equal(("hub", "p1"), file.FindAuth("docker.io"));
        Assert.Equal(("local", "p:with:colons"), file.FindAuth("127.0.0.1:5000"));
        Assert.Equal(("q", "p3"), file.FindAuth("QUAY.IO"));
        Assert.Null(file.FindAuth("empty.example"));
        Assert.Null(file.FindAuth("127.0.0.1:5001"));
    }

    [Fact]
    public void Parse_ReadsCredHelpersAndCredsStore()
    {
        var file = DockerConfigCredentials.Parse("""{"credsStore":"desktop","credHelpers":{"123.dkr.ecr.us-east-1.amazonaws.com":"ecr-login"}}""", "c");

        Assert.Equal("desktop", file.CredsStore);
        Assert.Equal("ecr-login", file.FindHelper("123.dkr.ecr.us-east-1.amazonaws.com"));
        Assert.Null(file.FindHelper("quay.io"));
    }

    [Fact]
    public void Parse_UndecodableAuth_IsVDDK3012ForThatRegistry_NamingTheFileButNotTheValue()
    {
        // As docker and podman do: not "no credentials found", which sends the user looking in the wrong place.
        var file = DockerConfigCredentials.Parse("""{"auths":{"r.example":{"auth":"!!!not-base64-s3cret"},"s.example":{"auth":"bm9jb2xvbg=="},"t.example":{},"u.example":{"auth":""}}}""", "/home/u/.docker/config.json");

        foreach (var registry in new[] { "r.example", "https://S.example/v1/" })
        {
            var error = Assert.Throws<VddkException>(() => file.FindAuth(registry));
            Assert.Equal(ErrorCodes.CredentialHelperFailed, error.Code);
            Assert.Contains("/home/u/.docker/config.json", error.Message);
            Assert.Contains(DockerConfigCredentials.NormalizeKey(registry), error.Message);
            Assert.DoesNotContain("s3cret", error.ToString());
            Assert.DoesNotContain("bm9jb2xvbg", error.ToString());
        }
        // Entries docker writes next to a credsStore ({}), or empty, are no credentials, not an error.
        Assert.Null(file.FindAuth("t.example"));
        Assert.Null(file.FindAuth("u.example"));
        Assert.Null(file.FindAuth("other.example"));
    }

    [Theory]
    [InlineData("[1,2,\"s3cret\"]", "array")]
    [InlineData("\"s3cret\"", "string")]
    [InlineData("null", "null")]
    public void Parse_ATopLevelThatIsNotAnObject_SaysSo(string json, string kind)
    {
        var error = Assert.Throws<VddkException>(() => DockerConfigCredentials.Parse(json, "/run/user/0/containers/auth.json"));

        Assert.Equal(ErrorCodes.CredentialHelperFailed, error.Code);
        Assert.Contains("'/run/user/0/containers/auth.json' is not a JSON object", error.Message);
        Assert.Contains(kind, error.Message);
        Assert.DoesNotContain("(line )", error.Message);
        Assert.DoesNotContain("s3cret", error.ToString());
    }

    [Fact]
    public void Parse_InvalidJson_FailsWithoutQuotingTheFile()
    {
        var error = Assert.Throws<VddkException>(() => DockerConfigCredentials.Parse("{\"auths\": {\"r\": {\"auth\": \"c2VjcmV0\"", "/home/u/.docker/config.json"));

        Assert.Equal(ErrorCodes.CredentialHelperFailed, error.Code);
        Assert.Contains("/home/u/.docker/config.json", error.Message);
        Assert.DoesNotContain("c2VjcmV0", error.ToString());
    }

    [Theory]
    [InlineData("https://index.docker.io/v1/", "docker.io")]
    [InlineData("registry-1.docker.io", "docker.io")]
    [InlineData("HTTP://Reg.Example:5000/v2/", "reg.example:5000")]
    [InlineData("reg.example", "reg.example")]
    public void NormalizeKey(string key, string expected)
    {
        Assert.Equal(expected, DockerConfigCredentials.NormalizeKey(key));
    }

    /// <summary>containers-auth.json(5): a key may name a namespace; the most specific key of a repository wins.</summary>
    [Fact]
    public void FindAuth_NamespacedKeys_ServeTheirNamespaceOnly_MostSpecificFirst()
    {
        var json = $$$"""
            {"auths": {
              "quay.io/org-a": {"auth": "{{{Auth("robot-a", "a")}}}"},
              "quay.io/org-a/special/": {"auth": "{{{Auth("robot-special", "s")}}}"},
              "quay.io": {"auth": "{{{Auth("person", "p")}}}"},
              "Reg.Example:5000/team": {"auth": "{{{Auth("team", "t")}}}"},
              "https://legacy.example/v1/": {"auth": "{{{Auth("legacy", "l")}}}"},
              "index.docker.io/myorg": {"auth": "{{{Auth("hub-org", "h")}}}"}
            }}
            """;

        var file = DockerConfigCredentials.Parse(json, "auth.json");

        Assert.Equal("robot-a", file.FindAuth("quay.io", "org-a/vddk")?.User);
        Assert.Equal("robot-a", file.FindAuth("quay.io", "org-a/special-not")?.User);
        Assert.Equal("robot-special", file.FindAuth("quay.io", "org-a/special/vddk")?.User);
        Assert.Equal("person", file.FindAuth("quay.io", "org-ab/vddk")?.User);
        Assert.Equal("person", file.FindAuth("quay.io")?.User);
        Assert.Equal("team", file.FindAuth("reg.example:5000", "team/vddk")?.User);
        // Without the namespace, the registry has no entry of its own.
        Assert.Null(file.FindAuth("reg.example:5000", "other/vddk"));
        Assert.Null(file.FindAuth("reg.example:5000"));
        // Docker's form (a scheme): the host alone counts, its path is no namespace.
        Assert.Equal("legacy", file.FindAuth("legacy.example", "v1/vddk")?.User);
        Assert.Equal("legacy", file.FindAuth("legacy.example", "any/vddk")?.User);
        // Docker Hub's aliases name the same registry in a namespaced key too.
        Assert.Equal("hub-org", file.FindAuth("docker.io", "myorg/vddk")?.User);
        Assert.Null(file.FindAuth("docker.io", "library/busybox"));
    }

    [Fact]
    public void FindAuth_UndecodableNamespacedEntry_IsVDDK3012_NamingItsKey()
    {
        var file = DockerConfigCredentials.Parse("""{"auths":{"quay.io/org-a":{"auth":"!!!s3cret"},"quay.io":{"auth":""" + $"\"{Auth("person", "p")}\"" + "}}}", "auth.json");

        var error = Assert.Throws<VddkException>(() => file.FindAuth("quay.io", "org-a/vddk"));

        Assert.Equal(ErrorCodes.CredentialHelperFailed, error.Code);
        Assert.Contains("quay.io/org-a", error.Message);
        Assert.DoesNotContain("s3cret", error.ToString());
        Assert.Equal("person", file.FindAuth("quay.io", "org-b/vddk")?.User);
    }

    [Fact]
    public void CredentialHelperOutput_IsParsed_AndIdentityTokensAreKeptAsSuch()
    {
        var credential = CredentialHelperProcess.ParseOutput("""{"ServerURL":"r","Username":"u","Secret":"s"}""", "docker-credential-x");
        Assert.Equal("u", credential!.UserName);
        Assert.Equal("s", credential.Secret);
        Assert.False(credential.IsIdentityToken);
        Assert.Null(CredentialHelperProcess.ParseOutput("""{"ServerURL":"r","Username":"u","Secret":""}""", "docker-credential-x"));
        var identity = CredentialHelperProcess.ParseOutput("""{"Username":"<token>","Secret":"refresh-token-value"}""", "docker-credential-x");
        Assert.True(identity!.IsIdentityToken);
        Assert.Equal("refresh-token-value", identity.Secret);
        Assert.DoesNotContain("refresh-token-value", identity.ToString());
    }

    [Fact]
    public void Parse_ReadsIdentityTokens_WhichWinOverAuth()
    {
        var file = DockerConfigCredentials.Parse($$$"""
            {"auths": {
              "myregistry.azurecr.io": {"auth": "{{{Auth("00000000-0000-0000-0000-000000000000", "")}}}", "identitytoken": "eyJ-refresh"},
              "quay.example": {"auth": "{{{Auth("u", "p")}}}", "identitytoken": ""}
            }}
            """, "config.json");

        Assert.Equal((RegistryCredential.IdentityTokenUser, "eyJ-refresh"), file.FindAuth("myregistry.azurecr.io"));
        Assert.Equal(("u", "p"), file.FindAuth("quay.example"));
    }
}

public sealed class CredentialChainTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "vddk-cred-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly Dictionary<string, string> _environment = new();

    public CredentialChainTests()
    {
        Directory.CreateDirectory(_home);
        _environment["HOME"] = _home;
    }

    private CredentialChain Chain(string? userName = null, IStaticCredentialProvider? inProcess = null) =>
        CredentialChain.Create(new CredentialOptions { GetEnvironmentVariable = n => _environment.GetValueOrDefault(n), UserName = userName, InProcess = inProcess }, new RecordingBuildLog());

    private void WriteFile(string relative, string registry, string user, string password)
    {
        var path = Path.Combine(_home, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, $"{{\"auths\":{{\"{registry}\":{{\"auth\":\"{Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password))}\"}}}}}}");
    }

    [Fact]
    public async Task PushSecretsFromTheEnvironment_GoToThePushRegistryOnly()
    {
        _environment[EnvironmentCredentialProvider.UserVariable] = "ci";
        _environment[EnvironmentCredentialProvider.PasswordVariable] = "push-registry-token";
        _environment[EnvironmentCredentialProvider.PushUserVariable] = "pusher";
        _environment[EnvironmentCredentialProvider.PushPasswordVariable] = "sdk-push-password";
        WriteFile(".docker/config.json", "registry.redhat.io", "rh-user", "rh-password");
        var chain = CredentialChain.Create(new CredentialOptions { GetEnvironmentVariable = n => _environment.GetValueOrDefault(n), PushRegistry = "Default-Route.apps.example:443" }, new RecordingBuildLog());

        Assert.Equal("push-registry-token", (await chain.GetCredentialAsync("default-route.apps.example:443", RegistryPurpose.Push, default))!.Secret);
        Assert.Equal("push-registry-token", (await chain.GetCredentialAsync("default-route.apps.example:443", RegistryPurpose.Pull, default))!.Secret);
        // The base image's registry: its own stored credentials, not the push registry's token.
        Assert.Equal("rh-password", (await chain.GetCredentialAsync("registry.redhat.io", RegistryPurpose.Pull, default))!.Secret);
        Assert.Null(await chain.GetCredentialAsync("elsewhere.example", RegistryPurpose.Push, default));
        _environment[EnvironmentCredentialProvider.PullUserVariable] = "puller";
        _environment[EnvironmentCredentialProvider.PullPasswordVariable] = "sdk-pull-password";
        Assert.Equal("sdk-pull-password", (await chain.GetCredentialAsync("quay.example", RegistryPurpose.Pull, default))!.Secret);
    }

    [Fact]
    public async Task ScopedPushSecrets_WithNoPushRegistry_GoNowhere()
    {
        _environment[EnvironmentCredentialProvider.UserVariable] = "ci";
        _environment[EnvironmentCredentialProvider.PasswordVariable] = "push-registry-token";
        var chain = CredentialChain.Create(new CredentialOptions { GetEnvironmentVariable = n => _environment.GetValueOrDefault(n), ScopeEnvironmentSecrets = true }, new RecordingBuildLog());

        Assert.Null(await chain.GetCredentialAsync("base.example", RegistryPurpose.Pull, default));
        Assert.Null(await chain.GetCredentialAsync("base.example", RegistryPurpose.Push, default));
    }

    [Fact]
    public async Task HostsByName_NeverGetTheEnvironmentsCredentials()
    {
        _environment[EnvironmentCredentialProvider.UserVariable] = "ci";
        _environment[EnvironmentCredentialProvider.PasswordVariable] = "env-secret";
        WriteFile(".docker/config.json", "storage.example", "st", "stored-secret");
        var chain = Chain().ForHostsByName();

        Assert.Null(await chain.GetCredentialAsync("upload.example", RegistryPurpose.Push, default));
        Assert.Equal("stored-secret", (await chain.GetCredentialAsync("storage.example", RegistryPurpose.Push, default))!.Secret);
    }

    [Fact]
    public async Task PushAndPullEnvironmentVariables_AreSeparate()
    {
        _environment[EnvironmentCredentialProvider.PushUserVariable] = "pusher";
        _environment[EnvironmentCredentialProvider.PushPasswordVariable] = "pw1";
        _environment[EnvironmentCredentialProvider.PullUserVariable] = "puller";
        _environment[EnvironmentCredentialProvider.PullPasswordVariable] = "pw2";
        var chain = Chain();

        Assert.Equal("pusher", (await chain.GetCredentialAsync("r.example", RegistryPurpose.Push, default))!.UserName);
        Assert.Equal("puller", (await chain.GetCredentialAsync("r.example", RegistryPurpose.Pull, default))!.UserName);
    }

    [Fact]
    public async Task InProcessCredentials_ComeFirst()
    {
        _environment[EnvironmentCredentialProvider.PushUserVariable] = "env";
        _environment[EnvironmentCredentialProvider.PushPasswordVariable] = "pw";
        var inProcess = new StaticCredentialProvider();
        inProcess.Set("r.example", new RegistryCredential("sa", "token", "cluster"));

        var credential = await Chain(inProcess: inProcess).GetCredentialAsync("r.example", RegistryPurpose.Push, default);

        Assert.Equal("sa", credential!.UserName);
    }

    [Fact]
    public async Task DockerConfig_ThenPodmanAuthFile_AreRead()
    {
        WriteFile(".docker/config.json", "docker-only.example", "d", "p");
        WriteFile(".config/containers/auth.json", "podman-only.example", "pm", "p");
        var chain = Chain();

        Assert.Equal("d", (await chain.GetCredentialAsync("docker-only.example", RegistryPurpose.Push, default))!.UserName);
        Assert.Equal("pm", (await chain.GetCredentialAsync("podman-only.example", RegistryPurpose.Pull, default))!.UserName);
        Assert.Null(await chain.GetCredentialAsync("other.example", RegistryPurpose.Push, default));
    }

    [Fact]
    public async Task NamespacedEntries_AreLookedUpPerRepository_AcrossFiles()
    {
        WriteFile(".docker/config.json", "quay.io/org-a", "robot-a", "a");
        WriteFile(".config/containers/auth.json", "quay.io", "person", "p");
        var chain = Chain();

        Assert.Equal("robot-a", (await chain.GetCredentialAsync("quay.io", "org-a/vddk", RegistryPurpose.Push, default))!.UserName);
        Assert.Equal("person", (await chain.GetCredentialAsync("quay.io", "org-b/vddk", RegistryPurpose.Push, default))!.UserName);
        Assert.Equal("person", (await chain.GetCredentialAsync("quay.io", RegistryPurpose.Pull, default))!.UserName);
        // Asked again in the other order, from what the chain remembers.
        Assert.Equal("robot-a", (await chain.GetCredentialAsync("quay.io", "org-a/vddk", RegistryPurpose.Push, default))!.UserName);
    }

    [Fact]
    public async Task DockerConfigVariable_AndRegistryAuthFile_AreHonoured()
    {
        WriteFile("custom/config.json", "a.example", "via-docker-config", "p");
        WriteFile("elsewhere/auth.json", "b.example", "via-registry-auth-file", "p");
        _environment["DOCKER_CONFIG"] = Path.Combine(_home, "custom");
        _environment["REGISTRY_AUTH_FILE"] = Path.Combine(_home, "elsewhere/auth.json");
        var chain = Chain();

        Assert.Equal("via-docker-config", (await chain.GetCredentialAsync("a.example", RegistryPurpose.Push, default))!.UserName);
        Assert.Equal("via-registry-auth-file", (await chain.GetCredentialAsync("b.example", RegistryPurpose.Push, default))!.UserName);
    }

    [Fact]
    public async Task ExplicitUserName_CombinesWithPasswordVariable_AndFiltersFileEntries()
    {
        WriteFile(".docker/config.json", "r.example", "someone-else", "p");
        _environment[EnvironmentCredentialProvider.PushPasswordVariable] = "token";

        var fromEnvironment = await Chain(userName: "me").GetCredentialAsync("r.example", RegistryPurpose.Push, default);
        _environment.Remove(EnvironmentCredentialProvider.PushPasswordVariable);
        var fromFile = await Chain(userName: "me").GetCredentialAsync("r.example", RegistryPurpose.Push, default);

        Assert.Equal("me", fromEnvironment!.UserName);
        Assert.Null(fromFile);
    }

    [Fact]
    public void Credential_ToString_HidesTheSecret()
    {
        var credential = new RegistryCredential("user", "top-secret-value", "env");

        Assert.DoesNotContain("top-secret-value", credential.ToString());
        Assert.Contains("user", credential.ToString());
    }

    public void Dispose() => Directory.Delete(_home, recursive: true);
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // a shell-script helper and /proc
public sealed class CredentialHelperProcessTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("vddk-helper-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_helper_that_hangs_is_VDDK3012_and_nothing_it_started_outlives_it()
    {
        // A script helper whose child hangs (gcloud, pass and the like are scripts around other programs).
        var pidFile = Path.Combine(_directory, "child.pid");
        var helper = Path.Combine(_directory, "docker-credential-hangs");
        File.WriteAllText(helper, $"#!/bin/sh\nsleep 300 &\necho $! > '{pidFile}'\nwait\n");
        File.SetUnixFileMode(helper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var ex = await Assert.ThrowsAsync<VddkException>(() =>
            CredentialHelperProcess.RunAsync(helper, "registry.example.com", TimeSpan.FromSeconds(2), CancellationToken.None));

        Assert.Equal(ErrorCodes.CredentialHelperFailed, ex.Code);
        Assert.Contains("did not answer within 2 s", ex.Message);
        var child = int.Parse(File.ReadAllText(pidFile).Trim());
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (IsRunning(child) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        Assert.False(IsRunning(child), $"the helper's child {child} still runs");
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            // Field 3 of /proc/PID/stat is the state; a killed child not yet reaped is a zombie (Z).
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
    }
}
