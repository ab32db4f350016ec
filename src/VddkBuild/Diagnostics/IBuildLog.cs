namespace VddkBuild.Diagnostics;

/// <summary>
/// Where the engine reports progress and warnings. MSBuild tasks adapt it to TaskLoggingHelper; tests collect it.
/// Implementations must be thread-safe: uploads report from several tasks at once.
/// </summary>
public interface IBuildLog
{
    /// <summary>A line users see at normal verbosity (progress, summaries, results).</summary>
    void Info(string message);

    /// <summary>Detail for diagnostic verbosity only.</summary>
    void Detail(string message);

    /// <summary>A warning with a stable code (VDDKnnnn).</summary>
    void Warn(string code, string message);
}

/// <summary>A log that drops everything.</summary>
public sealed class NullBuildLog : IBuildLog
{
    public static readonly NullBuildLog Instance = new();
    public void Info(string message) { }
    public void Detail(string message) { }
    public void Warn(string code, string message) { }
}
