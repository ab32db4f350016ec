using Xunit;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// Preconditions of tests that need real infrastructure. Locally a missing part skips the test
/// (use <c>[SkippableFact]</c>/<c>[SkippableTheory]</c>); in CI (<c>CI=true</c>) it fails, because there the
/// project's own scripts must have installed everything.
/// </summary>
public static class Requires
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Requires an executable on PATH (or an absolute path that exists); returns its full path.</summary>
    public static string Tool(string name)
    {
        var path = Which(name);
        That(path is not null, $"'{name}' is not installed; run ./build.sh deps (scripts/install-deps.sh) to install it.");
        return path!;
    }

    /// <summary>Skips locally / fails in CI when <paramref name="condition"/> is false.</summary>
    public static void That(bool condition, string whatIsMissing)
    {
        if (condition)
        {
            return;
        }
        if (InCi)
        {
            throw new InvalidOperationException($"Required test infrastructure is missing in CI: {whatIsMissing}");
        }
        Skip.If(true, whatIsMissing);
    }

    public static string? Which(string name)
    {
        if (Path.IsPathRooted(name))
        {
            return File.Exists(name) ? name : null;
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}
