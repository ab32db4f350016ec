using VddkBuild.Diagnostics;
using VddkBuild.Registry;

namespace VddkBuild.Tasks;

/// <summary>
/// Where MSBuild itself puts environment variables into logs, measured with the SDK this project builds with: at
/// the start of every build it records each variable whose name starts with <c>DOTNET_</c> (also <c>MSBUILD</c>,
/// <c>COMPLUS_</c>) in binary logs (-bl) and -v:diag output; with MSBUILDLOGALLENVIRONMENTVARIABLES set it records
/// every variable; otherwise only those a project reads as properties (VddkBuild's targets read no secret). So the
/// SDK's DOTNET_CONTAINER_*_PWORD password is in any binary log of the build before a task runs. A task cannot take
/// it back; it says so on every run and names the safe sources.
/// </summary>
internal static class SecretEnvironmentGuard
{
    public const string LogAllVariable = "MSBUILDLOGALLENVIRONMENTVARIABLES";

    /// <summary>
    /// The SDK's generic push password variables (its older names, still read by its containers tasks): VddkBuild does
    /// not read them, but a pipeline moved over from <c>PublishContainer</c> still sets them, and MSBuild still logs
    /// the DOTNET_ one.
    /// </summary>
    private const string SdkGenericPasswordVariable = "DOTNET_CONTAINER_REGISTRY_PWORD";
    private const string SdkHostPasswordVariable = "SDK_CONTAINER_REGISTRY_PWORD";

    private static readonly string[] SdkPasswordVariables =
        [EnvironmentCredentialProvider.PushPasswordVariable, EnvironmentCredentialProvider.PullPasswordVariable, SdkGenericPasswordVariable];

    public static void Check(IBuildLog log, Func<string, string?>? getEnvironmentVariable = null)
    {
        var get = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        var logsAll = !string.IsNullOrEmpty(get(LogAllVariable));
        var exposed = SdkPasswordVariables
            .Concat(logsAll ? [EnvironmentCredentialProvider.PasswordVariable, SdkHostPasswordVariable] : [])
            .Where(v => !string.IsNullOrEmpty(get(v)))
            .ToList();
        if (exposed.Count == 0)
        {
            return;
        }
        var why = logsAll
            ? $"{LogAllVariable} is set, so MSBuild writes every environment variable"
            : "MSBuild writes every DOTNET_* environment variable";
        log.Warn(ErrorCodes.SecretEnvironmentLogged,
            $"The registry password in {string.Join(" and ", exposed)} is recorded in this build's binary log (-bl) and -v:diag output: {why} there at the start of the build. "
            + $"Pass it as {EnvironmentCredentialProvider.PasswordVariable} (with {EnvironmentCredentialProvider.UserVariable} or VddkRegistryUserName){(logsAll ? $" without {LogAllVariable}" : string.Empty)}, or in a credential file (REGISTRY_AUTH_FILE, ~/.docker/config.json, podman's auth.json); treat a logged password as exposed.");
    }
}
