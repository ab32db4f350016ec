namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>The outcome of a finished child process with its captured output.</summary>
public sealed record ProcessResult(string CommandLine, int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Throws <see cref="ProcessFailedException"/> (with both streams) unless the exit code is 0.</summary>
    public ProcessResult EnsureSuccess() => Succeeded ? this : throw new ProcessFailedException(this);
}

/// <summary>A child process exited non-zero or timed out. The message carries the command line and both output streams.</summary>
public sealed class ProcessFailedException : Exception
{
    public ProcessFailedException(ProcessResult result)
        : base(Describe(result)) => Result = result;

    public ProcessResult Result { get; }

    private static string Describe(ProcessResult result) =>
        $"'{result.CommandLine}' exited with code {result.ExitCode} after {result.Elapsed.TotalSeconds:0.0} s.\n" +
        $"--- stdout ---\n{Tail(result.StandardOutput)}\n--- stderr ---\n{Tail(result.StandardError)}";

    private static string Tail(string text) => text.Length <= 8000 ? text : "...\n" + text[^8000..];
}
