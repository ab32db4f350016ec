namespace VddkBuild.Registry;

/// <summary>
/// The .NET SDK's variables: <c>DOTNET_CONTAINER_PUSH_REGISTRY_UNAME</c>/<c>_PWORD</c> for pushes and
/// <c>DOTNET_CONTAINER_PULL_REGISTRY_UNAME</c>/<c>_PWORD</c> for pulls. An explicit user name (a non-secret option)
/// may be combined with the password variable alone.
/// </summary>
public sealed class EnvironmentCredentialProvider(Func<string, string?> getEnvironmentVariable, string? explicitUserName = null) : ICredentialProvider
{
    public const string PushUserVariable = "DOTNET_CONTAINER_PUSH_REGISTRY_UNAME";
    public const string PushPasswordVariable = "DOTNET_CONTAINER_PUSH_REGISTRY_PWORD";
    public const string PullUserVariable = "DOTNET_CONTAINER_PULL_REGISTRY_UNAME";
    public const string PullPasswordVariable = "DOTNET_CONTAINER_PULL_REGISTRY_PWORD";

    public ValueTask<RegistryCredential?> GetCredentialAsync(string registry, RegistryPurpose purpose, CancellationToken cancellationToken)
    {
        var (userVariable, passwordVariable) = purpose == RegistryPurpose.Push
            ? (PushUserVariable, PushPasswordVariable)
            : (PullUserVariable, PullPasswordVariable);
        var password = getEnvironmentVariable(passwordVariable);
        var user = string.IsNullOrEmpty(explicitUserName) ? getEnvironmentVariable(userVariable) : explicitUserName;
        if (string.IsNullOrEmpty(password) || string.IsNullOrEmpty(user))
        {
            return ValueTask.FromResult<RegistryCredential?>(null);
        }
        return ValueTask.FromResult<RegistryCredential?>(new RegistryCredential(user, password, $"{userVariable}/{passwordVariable}"));
    }
}
