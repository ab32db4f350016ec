using VddkBuild.Diagnostics;
using VddkBuild.Registry;

namespace VddkBuild.Tasks;

/// <summary>
/// MSBuild writes an environment variable into binary logs (-bl) and -v:diag output only when a project reads it as
/// a property (VddkBuild's targets never read the password variables) - or, for every variable, when
/// MSBUILDLOGALLENVIRONMENTVARIABLES is set. In that case a registry password passed the .NET SDK way is already in
/// the log when a task starts; the task cannot take it back, so it says so on every run.
/// </summary>
internal static class SecretEnvironmentGuard
{
    public const string LogAllVariable = "MSBUILDLOGALLENVIRONMENTVARIABLES";

    private static readonly string[] PasswordVariables =
        [EnvironmentCredentialProvider.PushPasswordVariable, EnvironmentCredentialProvider.PullPasswordVariable];

    public static void Check(IBuildLog log, Func<string, string?>? getEnvironmentVariable = null)
    {
        var get = getEnvironmentVariable ?? Environment.GetEnvironmentVariable;
        if (string.IsNullOrEmpty(get(LogAllVariable)))
        {
            return;
        }
        var exposed = PasswordVariables.Where(v => !string.IsNullOrEmpty(get(v))).ToList();
        if (exposed.Count == 0)
        {
            return;
        }
        log.Warn(ErrorCodes.SecretEnvironmentLogged,
            $"{string.Join(" and ", exposed)} {(exposed.Count == 1 ? "is" : "are")} recorded in this build's log because {LogAllVariable} is set: MSBuild then writes every environment variable into binary logs (-bl) and -v:diag output. "
            + $"Treat the password as exposed (rotate it, delete the logs), and unset {LogAllVariable} or pass registry credentials in a credential file instead (REGISTRY_AUTH_FILE, ~/.docker/config.json, podman's auth.json).");
    }
}
