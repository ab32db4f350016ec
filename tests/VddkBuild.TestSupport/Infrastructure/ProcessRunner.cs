using System.Diagnostics;
using System.Text;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// Runs a child process to completion with an explicit environment (<see cref="ChildEnvironment"/>), a timeout,
/// cancellation, and captured stdout/stderr. On timeout or cancellation the whole process tree is killed.
/// Secrets never belong in arguments (use files or environment variables); <paramref name="redact"/> values are
/// still scrubbed from the recorded command line and output as a second line of defence.
/// </summary>
public static class ProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Exit code returned in <see cref="ProcessResult"/> when the process was killed for exceeding its timeout.</summary>
    public const int TimedOutExitCode = -1;

    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        ChildEnvironment? environment = null,
        TimeSpan? timeout = null,
        string? workingDirectory = null,
        string? standardInput = null,
        IReadOnlyCollection<string>? redact = null,
        CancellationToken cancellationToken = default)
    {
        var args = arguments.ToList();
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }
        startInfo.Environment.Clear();
        foreach (var (name, value) in environment ?? ChildEnvironment.Minimal())
        {
            startInfo.Environment[name] = value;
        }

        var commandLine = Redact(string.Join(' ', new[] { fileName }.Concat(args.Select(Quote))), redact);
        var stopwatch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new InvalidOperationException($"Could not start '{commandLine}': {ex.Message}. Is it installed? Run ./build.sh deps.", ex);
        }

        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            if (standardInput is not null)
            {
                await process.StandardInput.WriteAsync(standardInput.AsMemory(), cancellationToken);
            }
        }
        catch (IOException)
        {
            // The child closed its input early; its exit code and stderr tell why.
        }
        finally
        {
            process.StandardInput.Close();
        }

        using var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutSource.CancelAfter(timeout ?? DefaultTimeout);
        var timedOut = false;
        try
        {
            await process.WaitForExitAsync(timeoutSource.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            timedOut = true;
        }

        var output = await stdout;
        var error = await stderr;
        if (timedOut)
        {
            error += $"\n[killed: no exit within {(timeout ?? DefaultTimeout).TotalSeconds:0} s]";
        }
        return new ProcessResult(
            commandLine,
            timedOut ? TimedOutExitCode : process.ExitCode,
            Redact(output, redact),
            Redact(error, redact),
            stopwatch.Elapsed);
    }

    /// <summary><see cref="RunAsync"/>, then <see cref="ProcessResult.EnsureSuccess"/>.</summary>
    public static async Task<ProcessResult> RunCheckedAsync(
        string fileName,
        IEnumerable<string> arguments,
        ChildEnvironment? environment = null,
        TimeSpan? timeout = null,
        string? workingDirectory = null,
        string? standardInput = null,
        IReadOnlyCollection<string>? redact = null,
        CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(fileName, arguments, environment, timeout, workingDirectory, standardInput, redact, cancellationToken);
        return result.EnsureSuccess();
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsLetterOrDigit(c) || "-_./:=@,+%".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''") + "'";

    private static string Redact(string text, IReadOnlyCollection<string>? secrets)
    {
        if (secrets is null)
        {
            return text;
        }
        foreach (var secret in secrets.Where(s => s.Length > 0))
        {
            text = text.Replace(secret, "***", StringComparison.Ordinal);
        }
        return text;
    }
}
