using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using VddkBuild.Diagnostics;

namespace VddkBuild.Tasks;

/// <summary>Adapts the engine's log to MSBuild. Thread-safe: TaskLoggingHelper may be called from any thread.</summary>
internal sealed class MSBuildLog(TaskLoggingHelper log) : IBuildLog
{
    public void Info(string message) => log.LogMessage(MessageImportance.Normal, message);

    public void Detail(string message) => log.LogMessage(MessageImportance.Low, message);

    public void Warn(string code, string message) =>
        log.LogWarning(subcategory: null, warningCode: code, helpKeyword: null, file: null, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0, message: message);
}
