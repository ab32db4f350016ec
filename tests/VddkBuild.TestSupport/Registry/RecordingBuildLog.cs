using System.Collections.Concurrent;
using VddkBuild.Diagnostics;

namespace VddkBuild.TestSupport.Registry;

/// <summary>An <see cref="IBuildLog"/> that keeps every line (thread-safe), optionally echoing to a test's output.</summary>
public sealed class RecordingBuildLog(Action<string>? echo = null) : IBuildLog
{
    private readonly ConcurrentQueue<(string Level, string? Code, string Message)> _lines = new();

    public IReadOnlyList<(string Level, string? Code, string Message)> Lines => [.. _lines];

    public IReadOnlyList<string> Warnings(string code) => [.. _lines.Where(l => l.Level == "warn" && l.Code == code).Select(l => l.Message)];

    public string AllText => string.Join("\n", _lines.Select(l => $"{l.Level} {l.Code} {l.Message}"));

    public void Info(string message) => Add("info", null, message);

    public void Detail(string message) => Add("detail", null, message);

    public void Warn(string code, string message) => Add("warn", code, message);

    private void Add(string level, string? code, string message)
    {
        _lines.Enqueue((level, code, message));
        try
        {
            echo?.Invoke($"[{level}{(code is null ? string.Empty : " " + code)}] {message}");
        }
        catch (InvalidOperationException)
        {
            // xunit's output helper refuses writes after the test ended (late background logs).
        }
    }
}
