using Microsoft.Build.Framework;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;
using MSBuildTask = Microsoft.Build.Utilities.Task;

namespace VddkBuild.Tasks;

/// <summary>
/// Base of every VddkBuild task: runs the engine asynchronously with a token that MSBuild cancellation (Ctrl+C)
/// reaches, and turns <see cref="VddkException"/> into an MSBuild error carrying its code. Anything else is a bug and
/// is reported as VDDK9999 with the exception type, never with data that could hold a secret.
/// </summary>
/// <remarks>Its public properties are kept by trimming for every task (the native worker sets and reads them by name).</remarks>
[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicProperties)]
public abstract class VddkTask : MSBuildTask, ICancelableTask
{
    private readonly CancellationTokenSource _cancellation = new();

    /// <summary>
    /// VddkNativeWorker: empty or true runs the task in the native worker where there is one (linux-x64, see
    /// <see cref="NativeWorkerClient"/>); false (or no, 0, off) always runs it in MSBuild's own process; anything else is VDDK5002.
    /// </summary>
    public string? NativeWorker { get; set; }

    internal bool CancellationRequested => _cancellation.IsCancellationRequested;

    /// <summary>The worker running this task, while it runs.</summary>
    internal NativeWorkerClient? WorkerClient { get; set; }

    public void Cancel()
    {
        _cancellation.Cancel();
        WorkerClient?.CloseInput();
    }

    /// <summary>$(MSBuildStartupDirectory): where dotnet build was started, for a VddkArchive relative to it.</summary>
    public string? StartupDirectory { get; set; }

    /// <summary>
    /// $(MSBuildProjectDirectory): relative paths in properties are relative to the project, as everywhere in MSBuild.
    /// (BuildEngine.ProjectFileOfTaskNode is the file holding the task element: the package's .targets.)
    /// </summary>
    public string? ProjectDirectory { get; set; }

    /// <summary><see cref="ProjectDirectory"/>, or the current directory (MSBuild's is the project's) when not given.</summary>
    protected string ProjectFolder => string.IsNullOrWhiteSpace(ProjectDirectory) ? Directory.GetCurrentDirectory() : Path.GetFullPath(ProjectDirectory);

    /// <summary>VddkArchive's full path (<c>~/</c>, the project's folder, else the startup directory; see <see cref="VddkArchiveFile.Resolve"/>).</summary>
    protected string ArchivePath(string value, IBuildLog log) =>
        VddkArchiveFile.Resolve(value, ProjectFolder, StartupDirectory, Environment.GetEnvironmentVariable("HOME"), log);

    public sealed override bool Execute()
    {
        bool useWorker;
        try
        {
            // Read as every VddkBuild switch is: "no", "0" or "off" turn the worker off as "false" does; a typo is an error.
            useWorker = TaskProperties.Flag(NativeWorker, "VddkNativeWorker", fallback: true);
        }
        catch (VddkException ex)
        {
            LogError(ex.Code, ex.Message, null);
            return false;
        }
        if (useWorker && NativeWorkerClient.Locate(this) is { } worker && NativeWorkerClient.TryExecute(this, worker, Log, out var succeeded))
        {
            return succeeded;
        }
        var log = new MSBuildLog(Log);
        try
        {
            ExecuteAsync(log, _cancellation.Token).GetAwaiter().GetResult();
        }
        catch (VddkException ex)
        {
            LogError(ex.Code, ex.Message, ex.Subject);
        }
        catch (OperationCanceledException) when (_cancellation.IsCancellationRequested)
        {
            Log.LogMessage(MessageImportance.High, CancelledMessage);
            return false;
        }
        catch (Exception ex)
        {
            LogError(ErrorCodes.Unexpected, $"Unexpected {ex.GetType().Name} in {GetType().Name}: {VddkException.Reason(ex)}. This is a bug in VddkBuild; please report it with the build log (-v:diag).", null);
            Log.LogMessage(MessageImportance.Low, ex.ToString());
        }
        finally
        {
            WaitForBackgroundWrites();
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>What a cancelled task says, in MSBuild's process or the native worker's.</summary>
    internal string CancelledMessage => $"{GetType().Name} was cancelled; nothing was left under a final name.";

    protected abstract Task ExecuteAsync(IBuildLog log, CancellationToken cancellationToken);

    /// <summary>Waits for files the task still writes in the background (they must be whole before MSBuild may exit).</summary>
    protected virtual void WaitForBackgroundWrites()
    {
    }

    /// <summary>A line shown at the default verbosity (results, where files went).</summary>
    protected void Announce(string message) => Log.LogMessage(MessageImportance.High, message);

    private void LogError(string code, string message, string? subject) =>
        Log.LogError(subcategory: null, errorCode: code, helpKeyword: null, file: subject is not null && File.Exists(subject) ? subject : null,
            lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0, message: message);
}
