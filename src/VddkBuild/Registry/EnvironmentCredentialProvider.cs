namespace VddkBuild.Registry;

/// <summary>
/// Credentials from environment variables. First VddkBuild's own <c>VDDK_REGISTRY_PASSWORD</c> (with
/// <c>VDDK_REGISTRY_USERNAME</c>, the user name option, or the SDK's user variable), for pulls and pushes: MSBuild
/// does not log it. Then the .NET SDK's variables: <c>DOTNET_CONTAINER_PUSH_REGISTRY_UNAME</c>/<c>_PWORD</c> for
/// pushes and <c>DOTNET_CONTAINER_PULL_REGISTRY_UNAME</c>/<c>_PWORD</c> for pulls - which MSBuild writes, like every
/// <c>DOTNET_*</c> variable, into binary logs and -v:diag output (the MSBuild tasks warn about that, VDDK3903).
/// An explicit user name (a non-secret option) may be combined with a password variable alone.
/// When the push registry is known (<paramref name="pushRegistry"/>), or the secrets are scoped
/// (<paramref name="scoped"/>: the MSBuild tasks), <c>VDDK_REGISTRY_PASSWORD</c> and the push variables go to the
/// push registry only, and nowhere when there is none: a base image on another registry (say registry.redhat.io)
/// never receives the push registry's secret; the pull variables still serve any registry pulled from, as in the SDK.
/// </summary>
public sealed class EnvironmentCredentialProvider(Func<string, string?> getEnvironmentVariable, string? explicitUserName = null, string? pushRegistry = null, bool scoped = false) : ICredentialProvider
{
    public const string PasswordVariable = "VDDK_REGISTRY_PASSWORD";
    public const string UserVariable = "VDDK_REGISTRY_USERNAME";
    public const string PushUserVariable = "DOTNET_CONTAINER_PUSH_REGISTRY_UNAME";
    public const string PushPasswordVariable = "DOTNET_CONTAINER_PUSH_REGISTRY_PWORD";
    public const string PullUserVariable = "DOTNET_CONTAINER_PULL_REGISTRY_UNAME";
    public const string PullPasswordVariable = "DOTNET_CONTAINER_PULL_REGISTRY_PWORD";

    public ValueTask<RegistryCredential?> GetCredentialAsync(string registry, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        var (userVariable, passwordVariable) = purpose == RegistryPurpose.Push
            ? (PushUserVariable, PushPasswordVariable)
            : (PullUserVariable, PullPasswordVariable);
        var explicitUser = string.IsNullOrEmpty(explicitUserName) ? null : explicitUserName;
        var forPushRegistry = string.IsNullOrEmpty(pushRegistry)
            ? !scoped
            : DockerConfigCredentials.NormalizeKey(registry) == DockerConfigCredentials.NormalizeKey(pushRegistry);
        if (!forPushRegistry && purpose == RegistryPurpose.Push)
        {
            return ValueTask.FromResult<RegistryCredential?>(null);
        }

        var own = forPushRegistry ? getEnvironmentVariable(PasswordVariable) : null;
        var ownUser = explicitUser ?? NullIfEmpty(getEnvironmentVariable(UserVariable)) ?? NullIfEmpty(getEnvironmentVariable(userVariable));
        if (!string.IsNullOrEmpty(own) && ownUser is not null)
        {
            return ValueTask.FromResult<RegistryCredential?>(new RegistryCredential(ownUser, own, PasswordVariable));
        }

        var password = getEnvironmentVariable(passwordVariable);
        var user = explicitUser ?? getEnvironmentVariable(userVariable);
        if (string.IsNullOrEmpty(password) || string.IsNullOrEmpty(user))
        {
            return ValueTask.FromResult<RegistryCredential?>(null);
        }
        return ValueTask.FromResult<RegistryCredential?>(new RegistryCredential(user, password, $"{userVariable}/{passwordVariable}"));
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
