using System.Diagnostics;
using System.Text;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// A long-running child (a registry, a token server) started with an explicit environment. It is stopped by the PID
/// this object started - SIGTERM, then SIGKILL after a grace period - never by name. The last output lines are kept
/// so a failed readiness check can say why.
/// </summary>
public sealed class BackgroundProcess : IAsyncDisposable
{
    private const int MaxKeptLines = 400;

    private readonly Process _process;
    private readonly Queue<string> _lines = new();
    private readonly Lock _linesLock = new();
    private bool _disposed;

    private BackgroundProcess(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
    }

    public int Pid => _process.Id;

    public string CommandLine { get; }

    public bool HasExited => _disposed || _process.HasExited;

    /// <summary>The last lines the process wrote to stdout and stderr (interleaved as they arrived).</summary>
    public string RecentOutput
    {
        get
        {
            lock (_linesLock)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    public static BackgroundProcess Start(string fileName, IEnumerable<string> arguments, ChildEnvironment? environment = null, string? workingDirectory = null)
    {
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
        var args = arguments.ToList();
        foreach (var arg in args)
        {
            startInfo.ArgumentList.Add(arg);
        }
        startInfo.Environment.Clear();
        foreach (var (name, value) in environment ?? ChildEnvironment.Minimal())
        {
            startInfo.Environment[name] = value;
        }

        var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        var background = new BackgroundProcess(process, string.Join(' ', new[] { fileName }.Concat(args)));
        process.OutputDataReceived += (_, e) => background.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => background.Keep(e.Data);
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            process.Dispose();
            throw new InvalidOperationException($"Could not start '{fileName}': {ex.Message}. Is it installed? Run ./build.sh deps.", ex);
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return background;
    }

    /// <summary>Polls <paramref name="isReady"/> until it returns true; fails with the recent output if the process exits or the time runs out.</summary>
    public async Task WaitUntilReadyAsync(Func<CancellationToken, Task<bool>> isReady, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (HasExited)
            {
                // The parameterless wait also drains the redirected streams, so the last lines are in RecentOutput.
                _process.WaitForExit();
                throw new InvalidOperationException($"'{CommandLine}' exited with code {_process.ExitCode} before it was ready. Output:\n{RecentOutput}");
            }
            bool ready;
            try
            {
                ready = await isReady(cancellationToken);
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                ready = false;
            }
            if (ready)
            {
                return;
            }
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"'{CommandLine}' was not ready within {timeout.TotalSeconds:0} s. Output:\n{RecentOutput}");
            }
            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>SIGTERM, then SIGKILL of the process tree after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan? grace = null)
    {
        if (!HasExited)
        {
            // By PID, through kill(1): .NET only offers SIGKILL, and a graceful stop lets servers flush logs.
            await ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], timeout: TimeSpan.FromSeconds(10));
            using var graceSource = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(5));
            try
            {
                await _process.WaitForExitAsync(graceSource.Token);
            }
            catch (OperationCanceledException)
            {
                try
                {
                    _process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // Exited in between.
                }
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        await StopAsync();
        _disposed = true;
        _process.Dispose();
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_linesLock)
        {
            _lines.Enqueue(line);
            while (_lines.Count > MaxKeptLines)
            {
                _lines.Dequeue();
            }
        }
    }
}
