using System.Diagnostics;

namespace VddkBuild.Tests.Layers;

/// <summary>Runs GNU tar / gzip as independent checkers of what the project writes.</summary>
internal static class CliTool
{
    public static (string StdOut, byte[] RawStdOut) Run(string fileName, params string[] args)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["LC_ALL"] = "C";
        info.Environment["TZ"] = "UTC";
        using var process = Process.Start(info)!;
        using var output = new MemoryStream();
        var stderrTask = process.StandardError.ReadToEndAsync();
        process.StandardOutput.BaseStream.CopyTo(output);
        process.WaitForExit();
        var stderr = stderrTask.Result;
        Assert.True(process.ExitCode == 0, $"{fileName} {string.Join(' ', args)} failed with {process.ExitCode}: {stderr}");
        var raw = output.ToArray();
        return (System.Text.Encoding.UTF8.GetString(raw), raw);
    }
}
