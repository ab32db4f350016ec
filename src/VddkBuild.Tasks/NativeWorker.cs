using System.Collections;
using System.ComponentModel;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace VddkBuild.Tasks;

/// <summary>
/// The native worker: the same task, run in <c>vddkbuild-worker</c>, a NativeAOT build of these tasks that ships in
/// the package next to the task assembly (tasks/net10.0/linux-x64/). A fresh <c>dotnet build</c> process compiles
/// and loads every method the task runs on first use (about 0.1 s of CPU for a publish, as much again in the
/// runtime's own type loading); the worker's code is compiled ahead of time, so it starts working at once.
///
/// Protocol (UTF-8 JSON, one object per line): the worker first writes <c>{"k":"ready"}</c>; MSBuild then writes the
/// request (task name, project file, culture, the task's input properties and items); the worker writes one line per
/// MSBuild event the task logs (message, warning, error: every field MSBuild keeps) and finally
/// <c>{"k":"done","ok":...,"out":{...}}</c> with the task's outputs. Closing the worker's standard input cancels
/// the task (MSBuild's Ctrl+C, or MSBuild itself ending), which then cleans up as it does in process. No secret
/// crosses: the request holds the task's properties, which never carry one, and the worker reads credentials from
/// the same environment and files as the task in process. The command line names nothing but the worker.
/// </summary>
internal static class NativeWorker
{
    /// <summary>The worker's folder under the task assembly's, named for the only platform it is built for.</summary>
    public const string RuntimeIdentifier = "linux-x64";

    public const string FileName = "vddkbuild-worker";

    /// <summary>Set inside the worker: its tasks run in its own process, never in yet another worker.</summary>
    public static bool InWorker { get; set; }

    /// <summary>The tasks the worker runs; cluster tasks stay in MSBuild (their KubernetesClient code is not in the worker).</summary>
    private static readonly Dictionary<string, Func<VddkTask>> Tasks = new(StringComparer.Ordinal)
    {
        [nameof(PublishVddkImage)] = () => new PublishVddkImage(),
        [nameof(BuildVddkImage)] = () => new BuildVddkImage(),
        [nameof(ExtractVddkArchive)] = () => new ExtractVddkArchive(),
    };

    public static bool Runs(string name) => Tasks.ContainsKey(name);

    public static VddkTask? Create(string name) => Tasks.TryGetValue(name, out var create) ? create() : null;

    /// <summary>
    /// The task assembly's module version id, which every compilation changes: a worker built from other sources than
    /// the task assembly beside it (only the task project rebuilt after a change) is never used.
    /// </summary>
    public static string BuildIdentity => typeof(NativeWorker).Assembly.ManifestModule.ModuleVersionId.ToString("N");

    internal static readonly JsonWriterOptions Writer = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };
}

/// <summary>The MSBuild side: starts the worker, hands it the task's inputs, relays its events, takes its outputs.</summary>
internal sealed class NativeWorkerClient
{
    /// <summary>
    /// How long a cancelled worker may take to clean up and end before it is killed: a worker that no longer reads its
    /// input (stopped, stuck in the kernel) must not keep MSBuild waiting for ever after Ctrl+C. Its temporary files
    /// are then removed by the next build, as after any process killed half way.
    /// </summary>
    private static readonly TimeSpan CancelGrace = TimeSpan.FromSeconds(10);

    private readonly VddkTask _task;
    private readonly object _gate = new();
    private Process? _process;
    private bool _cancelled;
    private bool _killedAfterCancel;

    private NativeWorkerClient(VddkTask task) => _task = task;

    /// <summary>
    /// The worker's path when <paramref name="task"/> can run there (VddkNativeWorker is checked by the caller): the task
    /// is one the worker runs, this is linux-x64 (glibc) and the worker is next to the task assembly. Otherwise null.
    /// </summary>
    public static string? Locate(VddkTask task)
    {
        if (NativeWorker.InWorker
            || !NativeWorker.Runs(task.GetType().Name)
            || !string.Equals(System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, NativeWorker.RuntimeIdentifier, StringComparison.Ordinal))
        {
            return null;
        }
        var folder = Path.GetDirectoryName(typeof(NativeWorker).Assembly.Location);
        if (string.IsNullOrEmpty(folder))
        {
            return null;
        }
        var path = Path.Combine(folder, NativeWorker.RuntimeIdentifier, NativeWorker.FileName);
        return File.Exists(path) ? path : null;
    }

    /// <summary>
    /// Runs the task in the worker. False when the worker could not be started (not executable, a file system mounted
    /// noexec, a C library too old for it): nothing ran, and the caller runs the task in process.
    /// </summary>
    public static bool TryExecute(VddkTask task, string workerPath, TaskLoggingHelper log, out bool succeeded) =>
        new NativeWorkerClient(task).TryExecute(workerPath, log, out succeeded);

    private bool TryExecute(string workerPath, TaskLoggingHelper log, out bool succeeded)
    {
        succeeded = false;
        EnsureExecutable(workerPath);
        var start = new ProcessStartInfo(workerPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            WorkingDirectory = Directory.GetCurrentDirectory(),
        };
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new Win32Exception("no process");
        }
        catch (Exception ex) when (ex is Win32Exception or IOException or UnauthorizedAccessException)
        {
            log.LogMessage(MessageImportance.Low, $"VddkBuild: the native worker {workerPath} could not be started ({ex.Message}); running {_task.GetType().Name} in MSBuild.");
            return false;
        }
        using (process)
        {
            var errors = new StringBuilder();
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is { } line && errors.Length < 8192)
                {
                    lock (errors)
                    {
                        errors.AppendLine(line);
                    }
                }
            };
            process.BeginErrorReadLine();
            // Registered before its first line: Ctrl+C must reach (and, past the grace time, kill) a worker stuck while it starts.
            lock (_gate)
            {
                _process = process;
                _task.WorkerClient = this;
            }
            if (_task.CancellationRequested)
            {
                CloseInput(); // Cancel() came before the worker was registered
            }
            try
            {
                var output = process.StandardOutput;
                if (output.ReadLine() is not { } first || Ready(first) is not { } build)
                {
                    // It never ran: a loader error (C library, noexec) ends it before its first line.
                    process.WaitForExit();
                    if (_task.CancellationRequested)
                    {
                        return Cancelled(log);
                    }
                    log.LogMessage(MessageImportance.Low, $"VddkBuild: the native worker {workerPath} did not start (exit code {process.ExitCode}: {Errors(errors)}); running {_task.GetType().Name} in MSBuild.");
                    return false;
                }
                if (build != NativeWorker.BuildIdentity)
                {
                    CloseInput();
                    process.WaitForExit();
                    if (_task.CancellationRequested)
                    {
                        return Cancelled(log);
                    }
                    log.LogMessage(MessageImportance.Low, $"VddkBuild: the native worker {workerPath} was built from other sources than the task assembly beside it (build src/VddkBuild.Worker to rebuild it); running {_task.GetType().Name} in MSBuild.");
                    return false;
                }
                log.LogMessage(MessageImportance.Low, $"VddkBuild: {_task.GetType().Name} runs in the native worker {workerPath} (process {process.Id}); -p:VddkNativeWorker=false runs it in MSBuild.");
                if (!SendRequest(process))
                {
                    // The worker ended before it took the request (cancelled, or it died): nothing ran yet.
                    process.WaitForExit();
                    if (_cancelled)
                    {
                        return Cancelled(log);
                    }
                    log.LogMessage(MessageImportance.Low, $"VddkBuild: the native worker ended before it took the task (exit code {process.ExitCode}: {Errors(errors)}); running {_task.GetType().Name} in MSBuild.");
                    return false;
                }
                JsonElement? done = null;
                while (output.ReadLine() is { } line)
                {
                    JsonDocument document;
                    try
                    {
                        document = JsonDocument.Parse(line);
                    }
                    catch (JsonException)
                    {
                        // Not the protocol (something in the worker wrote to standard output): kept for the detailed log.
                        log.LogMessage(MessageImportance.Low, $"VddkBuild: native worker: {line}");
                        continue;
                    }
                    using (document)
                    {
                        var root = document.RootElement;
                        if (root.ValueKind == JsonValueKind.Object && Relay(root, log))
                        {
                            done = root.Clone();
                            break;
                        }
                    }
                }
                CloseInput();
                process.WaitForExit();
                if (done is not { } result)
                {
                    log.LogMessage(MessageImportance.Low, $"VddkBuild: native worker standard error: {Errors(errors)}");
                    if (_task.CancellationRequested)
                    {
                        return Cancelled(log); // the build stops either way; not a bug
                    }
                    // On Unix a process killed by signal N ends with 128 + N: 9 is SIGKILL, what the kernel's out-of-memory killer sends.
                    if (process.ExitCode is > 128 and < 160 && !OperatingSystem.IsWindows())
                    {
                        var signal = process.ExitCode - 128;
                        log.LogError(subcategory: null, errorCode: VddkBuild.ErrorCodes.NativeWorkerKilled, helpKeyword: null, file: null, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0,
                            message: $"The native worker running {_task.GetType().Name} was killed by signal {signal}{(signal == 9 ? " (SIGKILL: most often the kernel's out-of-memory killer, see dmesg or the container's memory limit, or a kill -9)" : string.Empty)} before it finished. "
                                + "Nothing was left under a final name; the next build removes its temporary files. Give the build more memory (or stop what killed it) and build again.");
                        return true;
                    }
                    log.LogError(subcategory: null, errorCode: VddkBuild.ErrorCodes.Unexpected, helpKeyword: null, file: null, lineNumber: 0, columnNumber: 0, endLineNumber: 0, endColumnNumber: 0,
                        message: $"The native worker running {_task.GetType().Name} ended unexpectedly (exit code {process.ExitCode}). This is a bug in VddkBuild; please report it with the build log (-v:diag), and build with -p:VddkNativeWorker=false meanwhile.");
                    return true;
                }
                SetOutputs(result);
                if (result.TryGetProperty("peakKb", out var peak) && peak.TryGetInt64(out var kilobytes))
                {
                    log.LogMessage(MessageImportance.Low, $"VddkBuild: native worker peak RSS {kilobytes} kB");
                }
                succeeded = result.TryGetProperty("ok", out var ok) && ok.ValueKind == JsonValueKind.True && !log.HasLoggedErrors;
                return true;
            }
            finally
            {
                lock (_gate)
                {
                    _process = null;
                    _task.WorkerClient = null;
                }
                if (!process.HasExited)
                {
                    Kill(process);
                    process.WaitForExit();
                }
            }
        }
    }

    /// <summary>What a cancelled task says (and that its worker had to be killed, when it was); true: it was handled, not to be run in MSBuild.</summary>
    private bool Cancelled(TaskLoggingHelper log)
    {
        if (Volatile.Read(ref _killedAfterCancel))
        {
            log.LogMessage(MessageImportance.High, $"VddkBuild: the native worker running {_task.GetType().Name} did not end within {CancelGrace.TotalSeconds:0} s of the cancellation and was killed; the next build removes its temporary files.");
        }
        log.LogMessage(MessageImportance.High, _task.CancelledMessage);
        return true;
    }

    private static string Errors(StringBuilder errors)
    {
        lock (errors)
        {
            var text = errors.ToString().Trim();
            return text.Length == 0 ? "nothing on standard error" : text.ReplaceLineEndings(" | ");
        }
    }

    /// <summary>A worker unpacked from a NuGet package may have lost its execute bit; NuGet does not keep file modes.</summary>
    private static void EnsureExecutable(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        try
        {
            var mode = File.GetUnixFileMode(path);
            if ((mode & UnixFileMode.UserExecute) == 0)
            {
                File.SetUnixFileMode(path, mode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Starting it says whether it can run; a read-only package folder falls back to the task in process.
        }
    }

    private bool SendRequest(Process process)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, NativeWorker.Writer))
        {
            json.WriteStartObject();
            json.WriteString("task", _task.GetType().Name);
            json.WriteString("project", _task.BuildEngine?.ProjectFileOfTaskNode ?? string.Empty);
            // Where the task element is: MSBuild puts it on a warning or error the task logs without a place of its own.
            json.WriteNumber("line", _task.BuildEngine?.LineNumberOfTaskNode ?? 0);
            json.WriteNumber("col", _task.BuildEngine?.ColumnNumberOfTaskNode ?? 0);
            json.WriteString("culture", CultureInfo.CurrentCulture.Name);
            json.WriteString("uiCulture", CultureInfo.CurrentUICulture.Name);
            json.WriteStartObject("props");
            foreach (var property in NativeWorkerProperties.Inputs(_task.GetType()))
            {
                switch (property.GetValue(_task))
                {
                    case string text:
                        json.WriteString(property.Name, text);
                        break;
                    case ITaskItem[] items:
                        json.WriteStartArray(property.Name);
                        foreach (var item in items)
                        {
                            json.WriteStartObject();
                            json.WriteString("spec", item.ItemSpec);
                            json.WriteStartObject("meta");
                            foreach (DictionaryEntry entry in item.CloneCustomMetadata())
                            {
                                json.WriteString((string)entry.Key, entry.Value as string ?? string.Empty);
                            }
                            json.WriteEndObject();
                            json.WriteEndObject();
                        }
                        json.WriteEndArray();
                        break;
                }
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        try
        {
            lock (_gate)
            {
                if (_cancelled)
                {
                    return false;
                }
                var input = process.StandardInput.BaseStream;
                input.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
                input.Flush();
            }
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Logs one event line through this task's own logger; true for the final line.</summary>
    private bool Relay(JsonElement line, TaskLoggingHelper log)
    {
        var kind = Text(line, "k");
        switch (kind)
        {
            case "done":
                return true;
            case "msg":
                log.LogMessage((MessageImportance)Math.Clamp(Number(line, "imp"), (int)MessageImportance.High, (int)MessageImportance.Low), Text(line, "text") ?? string.Empty);
                return false;
            case "warn":
            case "err":
                var (sub, code, help, file, text) = (Text(line, "sub"), Text(line, "code"), Text(line, "help"), Text(line, "file"), Text(line, "text") ?? string.Empty);
                var (l, c, el, ec) = (Number(line, "line"), Number(line, "col"), Number(line, "eline"), Number(line, "ecol"));
                if (kind == "warn")
                {
                    log.LogWarning(sub, code, help, file, l, c, el, ec, text);
                }
                else
                {
                    log.LogError(sub, code, help, file, l, c, el, ec, text);
                }
                return false;
            default:
                return false;
        }
    }

    private static string? Text(JsonElement line, string name) =>
        line.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static int Number(JsonElement line, string name) =>
        line.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetInt32() : 0;

    private void SetOutputs(JsonElement result)
    {
        if (!result.TryGetProperty("out", out var outputs))
        {
            return;
        }
        foreach (var property in NativeWorkerProperties.Outputs(_task.GetType()))
        {
            if (outputs.TryGetProperty(property.Name, out var value) && value.ValueKind == JsonValueKind.String)
            {
                // Outputs have private or protected setters, declared where the property is.
                var declared = property.DeclaringType?.GetProperty(property.Name, BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly) ?? property;
                declared.GetSetMethod(nonPublic: true)?.Invoke(_task, [value.GetString()]);
            }
        }
    }

    /// <summary>
    /// Cancels the running worker (or one about to start): its standard input is closed, which it takes as MSBuild's
    /// cancellation; one still running <see cref="CancelGrace"/> later is killed.
    /// </summary>
    public void CloseInput()
    {
        Process? process;
        lock (_gate)
        {
            _cancelled = true;
            process = _process;
            try
            {
                process?.StandardInput.Close();
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException)
            {
                // Already ended.
            }
        }
        if (process is not null)
        {
            _ = System.Threading.Tasks.Task.Delay(CancelGrace).ContinueWith(_ =>
            {
                lock (_gate)
                {
                    // Still this task's worker (the finally below clears it before disposing of the process).
                    if (ReferenceEquals(_process, process) && !process.HasExited)
                    {
                        _killedAfterCancel = _task.CancellationRequested;
                        Kill(process);
                    }
                }
            }, TaskScheduler.Default);
        }
    }

    /// <summary>Kills the worker and anything it started: a child holding its standard output would keep MSBuild reading.</summary>
    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is InvalidOperationException or Win32Exception)
        {
            // It ended meanwhile.
        }
    }

    /// <summary>The build identity in the worker's first line, or null when that line is not its "ready".</summary>
    private static string? Ready(string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            return root.ValueKind == JsonValueKind.Object && Text(root, "k") == "ready" ? Text(root, "build") ?? string.Empty : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>The task properties that cross: inputs (string or item list, public setter) and string outputs.</summary>
internal static class NativeWorkerProperties
{
    private const DynamicallyAccessedMemberTypes Members = DynamicallyAccessedMemberTypes.PublicProperties;

    public static IEnumerable<PropertyInfo> Inputs([DynamicallyAccessedMembers(Members)] Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => IsOurs(p) && p.GetSetMethod() is not null && p.GetCustomAttribute<OutputAttribute>() is null
                && (p.PropertyType == typeof(string) || p.PropertyType == typeof(ITaskItem[])));

    public static IEnumerable<PropertyInfo> Outputs([DynamicallyAccessedMembers(Members)] Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => IsOurs(p) && p.PropertyType == typeof(string) && p.GetCustomAttribute<OutputAttribute>() is not null);

    private static bool IsOurs(PropertyInfo property) =>
        property.DeclaringType?.Assembly == typeof(NativeWorkerProperties).Assembly && property.Name != nameof(VddkTask.NativeWorker);
}

/// <summary>The worker's side: reads the request, runs the task with an engine that writes its events, writes the outputs.</summary>
internal static class NativeWorkerHost
{
    public static int Run(Stream input, Stream output)
    {
        NativeWorker.InWorker = true;
        // Ctrl+C reaches every process of the terminal's foreground group, this one too: MSBuild takes it and
        // cancels the task by closing our standard input, so the signal itself must not end us before the cleanup.
        // SIGTERM (a CI job stopped, a pod deleted) cancels the task here directly, with the same cleanup.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => context.Cancel = true);
        VddkTask? running = null;
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            Volatile.Read(ref running)?.Cancel();
        });
        var engine = new WorkerEngine(output);
        engine.Write(json =>
        {
            json.WriteString("k", "ready");
            json.WriteString("build", NativeWorker.BuildIdentity);
        });

        var request = ReadLine(input);
        if (request is null)
        {
            return 0; // cancelled before it began
        }
        JsonDocument document;
        VddkTask? task;
        try
        {
            document = JsonDocument.Parse(request);
            task = document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("task", out var name) && name.ValueKind == JsonValueKind.String
                ? NativeWorker.Create(name.GetString()!)
                : null;
        }
        catch (JsonException)
        {
            task = null;
            document = JsonDocument.Parse("{}");
        }
        if (task is null)
        {
            document.Dispose();
            Console.Error.WriteLine($"{NativeWorker.FileName} runs VddkBuild's tasks for MSBuild, which starts it and talks to it on standard input and output; it is not a command to run by hand. Use dotnet build -t:PublishVddk.");
            return 2;
        }
        using var _ = document;
        var root = document.RootElement;
        engine.ProjectFileOfTaskNode = root.GetProperty("project").GetString() ?? string.Empty;
        engine.LineNumberOfTaskNode = root.TryGetProperty("line", out var line) && line.TryGetInt32(out var l) ? l : 0;
        engine.ColumnNumberOfTaskNode = root.TryGetProperty("col", out var column) && column.TryGetInt32(out var c) ? c : 0;
        SetCulture(root);
        task.BuildEngine = engine;
        Bind(task, root.GetProperty("props"));
        Volatile.Write(ref running, task);

        // MSBuild closes our standard input to cancel (or by ending): the task is cancelled as by Ctrl+C.
        var watcher = new Thread(() =>
        {
            var buffer = new byte[256];
            try
            {
                while (input.Read(buffer, 0, buffer.Length) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
            task.Cancel();
        }) { IsBackground = true, Name = "vddkbuild-worker stdin" };
        watcher.Start();

        var ok = task.Execute();
        engine.Write(json =>
        {
            json.WriteString("k", "done");
            json.WriteBoolean("ok", ok);
            if (PeakResidentKilobytes() is { } peak)
            {
                json.WriteNumber("peakKb", peak);
            }
            json.WriteStartObject("out");
            foreach (var property in NativeWorkerProperties.Outputs(task.GetType()))
            {
                if (property.GetValue(task) is string value)
                {
                    json.WriteString(property.Name, value);
                }
            }
            json.WriteEndObject();
        });
        return 0;
    }

    /// <summary>The worker's peak resident memory (VmHWM), for the detailed log: MSBuild's process does not show it.</summary>
    private static long? PeakResidentKilobytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal)
                    && long.TryParse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var kilobytes))
                {
                    return kilobytes;
                }
            }
        }
        catch (IOException)
        {
        }
        return null;
    }

    private static void Bind(VddkTask task, JsonElement properties)
    {
        foreach (var property in NativeWorkerProperties.Inputs(task.GetType()))
        {
            if (!properties.TryGetProperty(property.Name, out var value))
            {
                continue;
            }
            if (property.PropertyType == typeof(string))
            {
                property.SetValue(task, value.GetString());
            }
            else
            {
                var items = new List<ITaskItem>();
                foreach (var element in value.EnumerateArray())
                {
                    var metadata = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                    foreach (var entry in element.GetProperty("meta").EnumerateObject())
                    {
                        metadata[entry.Name] = Escape(entry.Value.GetString() ?? string.Empty);
                    }
                    items.Add(new TaskItem(Escape(element.GetProperty("spec").GetString() ?? string.Empty), metadata));
                }
                property.SetValue(task, items.ToArray());
            }
        }
    }

    /// <summary>TaskItem takes escaped text (%XX for MSBuild's special characters); the request carries it unescaped.</summary>
    internal static string Escape(string text)
    {
        if (text.AsSpan().IndexOfAny("%*?@$();'") < 0)
        {
            return text;
        }
        var escaped = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            if ("%*?@$();'".Contains(c))
            {
                escaped.Append('%').Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            }
            else
            {
                escaped.Append(c);
            }
        }
        return escaped.ToString();
    }

    private static void SetCulture(JsonElement root)
    {
        try
        {
            if (root.GetProperty("culture").GetString() is { Length: > 0 } culture)
            {
                CultureInfo.CurrentCulture = CultureInfo.DefaultThreadCurrentCulture = CultureInfo.GetCultureInfo(culture);
            }
            if (root.GetProperty("uiCulture").GetString() is { Length: > 0 } uiCulture)
            {
                CultureInfo.CurrentUICulture = CultureInfo.DefaultThreadCurrentUICulture = CultureInfo.GetCultureInfo(uiCulture);
            }
        }
        catch (CultureNotFoundException)
        {
            // The invariant culture then, as MSBuild falls back to.
        }
    }

    /// <summary>One line of the request: bytes up to '\n', read without buffering past it (the rest is the cancel watch).</summary>
    private static string? ReadLine(Stream input)
    {
        var line = new MemoryStream();
        var one = new byte[1];
        while (true)
        {
            var read = input.Read(one, 0, 1);
            if (read == 0)
            {
                return line.Length == 0 ? null : Encoding.UTF8.GetString(line.GetBuffer(), 0, (int)line.Length);
            }
            if (one[0] == (byte)'\n')
            {
                return Encoding.UTF8.GetString(line.GetBuffer(), 0, (int)line.Length);
            }
            line.WriteByte(one[0]);
        }
    }

    /// <summary>The worker's MSBuild engine: every event becomes one line on standard output.</summary>
    private sealed class WorkerEngine(Stream output) : IBuildEngine
    {
        private readonly object _gate = new();

        public bool ContinueOnError => false;
        public int LineNumberOfTaskNode { get; set; }
        public int ColumnNumberOfTaskNode { get; set; }
        public string ProjectFileOfTaskNode { get; set; } = string.Empty;

        public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => false;

        public void LogMessageEvent(BuildMessageEventArgs e) => Write(json =>
        {
            json.WriteString("k", "msg");
            json.WriteNumber("imp", (int)e.Importance);
            json.WriteString("text", e.Message);
        });

        public void LogCustomEvent(CustomBuildEventArgs e) => Write(json =>
        {
            json.WriteString("k", "msg");
            json.WriteNumber("imp", (int)MessageImportance.Low);
            json.WriteString("text", e.Message);
        });

        public void LogWarningEvent(BuildWarningEventArgs e) =>
            Write(json => Problem(json, "warn", e.Subcategory, e.Code, e.HelpKeyword, e.File, e.LineNumber, e.ColumnNumber, e.EndLineNumber, e.EndColumnNumber, e.Message));

        public void LogErrorEvent(BuildErrorEventArgs e) =>
            Write(json => Problem(json, "err", e.Subcategory, e.Code, e.HelpKeyword, e.File, e.LineNumber, e.ColumnNumber, e.EndLineNumber, e.EndColumnNumber, e.Message));

        private static void Problem(Utf8JsonWriter json, string kind, string? sub, string? code, string? help, string? file, int line, int col, int endLine, int endCol, string? text)
        {
            json.WriteString("k", kind);
            json.WriteString("sub", sub);
            json.WriteString("code", code);
            json.WriteString("help", help);
            json.WriteString("file", file);
            json.WriteNumber("line", line);
            json.WriteNumber("col", col);
            json.WriteNumber("eline", endLine);
            json.WriteNumber("ecol", endCol);
            json.WriteString("text", text);
        }

        public void Write(Action<Utf8JsonWriter> body)
        {
            lock (_gate)
            {
                using (var json = new Utf8JsonWriter(output, NativeWorker.Writer))
                {
                    json.WriteStartObject();
                    body(json);
                    json.WriteEndObject();
                }
                output.WriteByte((byte)'\n');
                output.Flush();
            }
        }
    }
}
