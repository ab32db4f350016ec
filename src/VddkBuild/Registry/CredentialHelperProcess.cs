using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Runs <c>docker-credential-&lt;name&gt; get</c>: the server URL on stdin, <c>{"ServerURL","Username","Secret"}</c>
/// on stdout. "Not found" answers give null; other failures VDDK3012 (without the helper's output, which may hold
/// a secret).
/// </summary>
public static class CredentialHelperProcess
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static Task<RegistryCredential?> GetAsync(string helperName, string registry, CancellationToken cancellationToken)
    {
        if (helperName.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new VddkException(ErrorCodes.CredentialHelperFailed, $"The credential helper name '{helperName}' is not valid.", helperName);
        }
        return RunAsync("docker-credential-" + helperName, registry, Timeout, cancellationToken);
    }

    /// <summary>Runs <paramref name="executable"/> (a name looked up in PATH, or a path: tests) as a credential helper.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    internal static async Task<RegistryCredential?> RunAsync(string executable, string registry, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Docker Hub credentials are stored under the v1 index URL by docker login.
        var serverUrl = registry == ImageReference.DockerHub ? "https://index.docker.io/v1/" : registry;
        var startInfo = new ProcessStartInfo(executable, "get")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new InvalidOperationException("no process");
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new VddkException(ErrorCodes.CredentialHelperFailed,
                $"The credential helper '{executable}' named in a Docker/podman credential file could not be started ({ex.Message}). Install it or remove it from the file.",
                executable, ex);
        }
        using (process)
        {
            using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeoutSource.CancelAfter(timeout);
            try
            {
                await process.StandardInput.WriteAsync(serverUrl.AsMemory(), timeoutSource.Token).ConfigureAwait(false);
                process.StandardInput.Close();
                var outputTask = process.StandardOutput.ReadToEndAsync(timeoutSource.Token);
                var errorTask = process.StandardError.ReadToEndAsync(timeoutSource.Token);
                await process.WaitForExitAsync(timeoutSource.Token).ConfigureAwait(false);
                var output = await outputTask.ConfigureAwait(false);
                var error = await errorTask.ConfigureAwait(false);
                if (process.ExitCode != 0)
                {
                    if ((output + error).Contains("not found", StringComparison.OrdinalIgnoreCase))
                    {
                        return null;
                    }
                    throw new VddkException(ErrorCodes.CredentialHelperFailed,
                        $"The credential helper '{executable}' failed for {registry} (exit code {process.ExitCode}). Run '{executable} list' to check it, or log in again.",
                        executable);
                }
                return ParseOutput(output, executable);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                TryKill(process);
                throw new VddkException(ErrorCodes.CredentialHelperFailed,
                    $"The credential helper '{executable}' did not answer within {timeout.TotalSeconds:0} s (it may be waiting for an unlock prompt).", executable);
            }
            catch (OperationCanceledException)
            {
                TryKill(process);
                throw;
            }
        }
    }

    internal static RegistryCredential? ParseOutput(string output, string executable)
    {
        try
        {
            using var document = JsonDocument.Parse(output);
            var root = document.RootElement;
            var user = root.TryGetProperty("Username", out var u) ? u.GetString() : null;
            var secret = root.TryGetProperty("Secret", out var s) ? s.GetString() : null;
            if (string.IsNullOrEmpty(secret))
            {
                return null;
            }
            // User "<token>": an identity token, exchanged at the registry's token endpoint (BearerTokenClient).
            return new RegistryCredential(string.IsNullOrEmpty(user) ? "unused" : user, secret, executable);
        }
        catch (JsonException ex)
        {
            throw new VddkException(ErrorCodes.CredentialHelperFailed, $"The credential helper '{executable}' printed something that is not JSON.", executable, ex);
        }
    }

    private static void TryKill(Process process)
    {
        try
        {
            // The whole tree: helpers are often scripts (docker-credential-gcloud, -pass) whose children would
            // otherwise live on after the build, holding the pipes.
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }
}
