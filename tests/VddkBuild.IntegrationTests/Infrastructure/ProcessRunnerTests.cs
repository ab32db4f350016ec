using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Infrastructure;

public sealed class ProcessRunnerTests
{
    [Fact]
    public async Task Child_sees_only_the_explicit_environment()
    {
        var result = await ProcessRunner.RunCheckedAsync("env", [], ChildEnvironment.Minimal().With("VDDKBUILD_PROBE", "yes"));

        var names = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line[..line.IndexOf('=')]).ToHashSet();
        Assert.Contains("VDDKBUILD_PROBE", names);
        Assert.Contains("PATH", names);
        Assert.DoesNotContain("AWS_CA_BUNDLE", names);
        Assert.DoesNotContain("SSL_CERT_FILE", names);
        Assert.Subset(new HashSet<string> { "PATH", "HOME", "LANG", "TMPDIR", "VDDKBUILD_PROBE" }, names);
    }

    [Fact]
    public async Task Captures_exit_code_and_both_streams()
    {
        var result = await ProcessRunner.RunAsync("sh", ["-c", "echo out; echo err >&2; exit 3"]);

        Assert.Equal(3, result.ExitCode);
        Assert.Equal("out", result.StandardOutput.Trim());
        Assert.Equal("err", result.StandardError.Trim());
        var failure = Assert.Throws<ProcessFailedException>(() => result.EnsureSuccess());
        Assert.Contains("err", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kills_a_process_that_outlives_its_timeout()
    {
        var started = DateTime.UtcNow;

        var result = await ProcessRunner.RunAsync("sleep", ["30"], timeout: TimeSpan.FromMilliseconds(300));

        Assert.Equal(ProcessRunner.TimedOutExitCode, result.ExitCode);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Redacts_secrets_from_the_recorded_command_and_output()
    {
        var result = await ProcessRunner.RunAsync("sh", ["-c", "echo token=s3cr3t-value; exit 1", "s3cr3t-value"], redact: ["s3cr3t-value"]);

        Assert.DoesNotContain("s3cr3t-value", result.CommandLine, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t-value", result.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t-value", new ProcessFailedException(result).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Background_process_is_stopped_by_its_pid()
    {
        var process = BackgroundProcess.Start("sleep", ["60"]);
        var pid = process.Pid;
        Assert.True(Directory.Exists($"/proc/{pid}"));

        await process.DisposeAsync();

        Assert.True(process.HasExited);
    }

    [Fact]
    public async Task Background_process_that_dies_reports_its_output()
    {
        await using var process = BackgroundProcess.Start("sh", ["-c", "echo listening failed >&2; exit 7"]);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            process.WaitUntilReadyAsync(_ => Task.FromResult(false), TimeSpan.FromSeconds(10)));

        Assert.Contains("listening failed", error.Message, StringComparison.Ordinal);
    }
}
