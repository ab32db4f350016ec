using System.Text.RegularExpressions;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>
/// samples/ci is copied into real pipelines as it is: it must follow README's rules for secrets, and a workflow must
/// not paste user input into a shell script.
/// </summary>
public sealed partial class CiSampleTests
{
    public static TheoryData<string> Samples() => new(Directory.GetFiles(Path.Combine(DotnetCli.RepoRoot, "samples", "ci")).Select(Path.GetFileName)!);

    [Theory]
    [MemberData(nameof(Samples))]
    public void A_CI_sample_never_puts_a_registry_password_in_a_variable_MSBuild_writes_into_logs(string name)
    {
        var text = File.ReadAllText(Path.Combine(DotnetCli.RepoRoot, "samples", "ci", name));

        // Every DOTNET_* variable is in the binary log and -v:diag output of the build (README, Secrets; VDDK3903).
        var assigned = LoggedPasswordAssignment().Matches(text).Select(m => m.Value).ToList();

        Assert.True(assigned.Count == 0, $"{name} sets {string.Join(", ", assigned)}; use VDDK_REGISTRY_PASSWORD");
        Assert.DoesNotContain("-p:VddkRegistryPassword", text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_GitHub_workflow_passes_inputs_to_its_scripts_through_the_environment()
    {
        var lines = File.ReadAllLines(Path.Combine(DotnetCli.RepoRoot, "samples", "ci", "github-actions.yml"));

        // Lines of `run: |` blocks: indented deeper than the `run:` key that opened them.
        var script = new List<string>();
        var runIndent = -1;
        foreach (var line in lines)
        {
            var indent = line.Length - line.TrimStart().Length;
            if (runIndent >= 0 && line.Trim().Length > 0 && indent <= runIndent)
            {
                runIndent = -1;
            }
            if (runIndent >= 0)
            {
                script.Add(line);
            }
            else if (line.TrimStart().StartsWith("run: |", StringComparison.Ordinal))
            {
                runIndent = indent;
            }
        }

        Assert.NotEmpty(script);
        Assert.DoesNotContain(script, l => l.Contains("${{", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"\bDOTNET_CONTAINER_\w*PWORD\s*[=:]")]
    private static partial Regex LoggedPasswordAssignment();
}
