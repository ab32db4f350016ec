using VddkBuild.Registry;

namespace VddkBuild.Tests.Reliability;

/// <summary>VddkBuild's own password variable (not logged by MSBuild) and how it combines with the SDK's variables.</summary>
public sealed class EnvironmentCredentialTests
{
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);

    private Task<RegistryCredential?> Get(RegistryPurpose purpose, string? userName = null) =>
        new EnvironmentCredentialProvider(n => _environment.GetValueOrDefault(n), userName).GetCredentialAsync("registry.example:5000", purpose, CancellationToken.None).AsTask();

    [Theory]
    [InlineData(RegistryPurpose.Push)]
    [InlineData(RegistryPurpose.Pull)]
    public async Task VDDK_REGISTRY_PASSWORD_with_its_user_serves_pushes_and_pulls(RegistryPurpose purpose)
    {
        _environment[EnvironmentCredentialProvider.UserVariable] = "builder";
        _environment[EnvironmentCredentialProvider.PasswordVariable] = "s3cret";

        var credential = await Get(purpose);

        Assert.Equal(("builder", "s3cret", "VDDK_REGISTRY_PASSWORD"), (credential!.UserName, credential.Secret, credential.Source));
        Assert.DoesNotContain("s3cret", credential.ToString());
    }

    [Fact]
    public async Task VDDK_REGISTRY_PASSWORD_wins_over_the_SDK_password_variable()
    {
        _environment[EnvironmentCredentialProvider.PasswordVariable] = "own";
        _environment[EnvironmentCredentialProvider.PushUserVariable] = "sdk-user";
        _environment[EnvironmentCredentialProvider.PushPasswordVariable] = "sdk";

        var credential = await Get(RegistryPurpose.Push);

        // The SDK's user variable is not secret and may name the user for VddkBuild's password.
        Assert.Equal(("sdk-user", "own"), (credential!.UserName, credential.Secret));
    }

    [Fact]
    public async Task The_user_name_option_names_the_user_of_VDDK_REGISTRY_PASSWORD()
    {
        _environment[EnvironmentCredentialProvider.UserVariable] = "from-environment";
        _environment[EnvironmentCredentialProvider.PasswordVariable] = "token";

        var credential = await Get(RegistryPurpose.Push, userName: "serviceaccount");

        Assert.Equal("serviceaccount", credential!.UserName);
    }

    [Fact]
    public async Task VDDK_REGISTRY_PASSWORD_needs_a_user_name_from_the_option_or_a_user_variable()
    {
        _environment[EnvironmentCredentialProvider.PasswordVariable] = "orphan";
        Assert.Null(await Get(RegistryPurpose.Push));

        _environment[EnvironmentCredentialProvider.PullUserVariable] = "puller";
        _environment[EnvironmentCredentialProvider.PullPasswordVariable] = "pull-secret";
        var pull = await Get(RegistryPurpose.Pull);
        Assert.Equal(("puller", "orphan"), (pull!.UserName, pull.Secret));
    }

    [Fact]
    public async Task Without_VDDK_REGISTRY_PASSWORD_the_SDK_variables_still_work()
    {
        _environment[EnvironmentCredentialProvider.PushUserVariable] = "pusher";
        _environment[EnvironmentCredentialProvider.PushPasswordVariable] = "pw";

        var credential = await Get(RegistryPurpose.Push);

        Assert.Equal(("pusher", "pw", "DOTNET_CONTAINER_PUSH_REGISTRY_UNAME/DOTNET_CONTAINER_PUSH_REGISTRY_PWORD"), (credential!.UserName, credential.Secret, credential.Source));
        Assert.Null(await Get(RegistryPurpose.Pull));
    }
}
