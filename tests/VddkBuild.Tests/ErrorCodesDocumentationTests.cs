using System.Reflection;
using System.Text.RegularExpressions;

namespace VddkBuild.Tests;

/// <summary>
/// README.md's code tables are the users' reference for every VDDKnnnn a build prints: each code of ErrorCodes is
/// there, marked as a warning exactly when it is one (x9nn), and each listed code is one the source can raise.
/// </summary>
public sealed partial class ErrorCodesDocumentationTests
{
    private static readonly string RepoRoot = FindRepoRoot();

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VddkBuild.sln")) && File.Exists(Path.Combine(dir.FullName, "README.md")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("The repository root (VddkBuild.sln and README.md) was not found above " + AppContext.BaseDirectory);
    }

    private static Dictionary<string, string> CodesInSource() =>
        typeof(ErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .ToDictionary(f => (string)f.GetRawConstantValue()!, f => f.Name, StringComparer.Ordinal);

    /// <summary>Rows of the README's code tables: "| VDDK1234 | ..." or "| VDDK1901 (warning) | ...".</summary>
    private static Dictionary<string, (bool Warning, string Meaning)> CodesInReadme()
    {
        var rows = new Dictionary<string, (bool, string)>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(Path.Combine(RepoRoot, "README.md")))
        {
            var match = CodeRow().Match(line);
            if (match.Success)
            {
                Assert.True(rows.TryAdd(match.Groups["code"].Value, (match.Groups["warning"].Success, match.Groups["meaning"].Value)),
                    $"{match.Groups["code"].Value} is listed twice in README.md");
            }
        }
        return rows;
    }

    [GeneratedRegex(@"^\| (?<code>VDDK\d{4})(?<warning> \(warning\))? \| (?<meaning>.*) \|$")]
    private static partial Regex CodeRow();

    [Fact]
    public void Every_code_of_ErrorCodes_is_in_the_README_and_marked_as_a_warning_exactly_when_it_is_one()
    {
        var readme = CodesInReadme();
        foreach (var (code, name) in CodesInSource())
        {
            Assert.True(readme.TryGetValue(code, out var row), $"{code} ({nameof(ErrorCodes)}.{name}) is not in README.md's code tables");
            var isWarning = code[5] == '9' && code != ErrorCodes.Unexpected;
            Assert.True(isWarning == row.Warning, $"{code} ({name}) is {(isWarning ? "a warning" : "an error")}, README.md says otherwise");
        }
    }

    [Fact]
    public void Every_code_in_the_README_exists_and_is_raised_somewhere_unless_marked_reserved()
    {
        var source = CodesInSource();
        var sources = Directory.EnumerateFiles(Path.Combine(RepoRoot, "src"), "*.*", SearchOption.AllDirectories)
            .Where(p => p.EndsWith(".cs", StringComparison.Ordinal) || p.EndsWith(".targets", StringComparison.Ordinal))
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !p.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && Path.GetFileName(p) != "ErrorCodes.cs")
            .Select(File.ReadAllText)
            .ToList();
        foreach (var (code, row) in CodesInReadme())
        {
            Assert.True(source.TryGetValue(code, out var name), $"README.md lists {code}, which ErrorCodes does not define");
            var raised = sources.Any(text => text.Contains($"ErrorCodes.{name}", StringComparison.Ordinal) || text.Contains($"\"{code}\"", StringComparison.Ordinal));
            var reserved = row.Meaning.StartsWith("Reserved", StringComparison.Ordinal);
            Assert.True(raised != reserved,
                raised ? $"{code} ({name}) is raised by the source but README.md calls it reserved"
                       : $"{code} ({name}) is raised nowhere in src/; README.md must say 'Reserved' instead of a meaning users will look for");
        }
    }
}
