using System.Text.Json;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>Runs targets of samples/PublishVddk the way the README says, with outputs kept in a test folder.</summary>
internal sealed class SampleProject(string workDirectory)
{
    public string ProjectPath { get; } = Path.Combine(DotnetCli.RepoRoot, "samples", "PublishVddk", "PublishVddk.proj");

    public string OutputDirectory { get; } = Path.Combine(workDirectory, "out");

    public string IntermediateDirectory { get; } = Path.Combine(workDirectory, "obj");

    /// <summary>Variables set (or, when null, removed) in the build's environment.</summary>
    public IReadOnlyDictionary<string, string?>? Environment { get; init; }

    /// <summary>A command that runs dotnet with the arguments after it; null runs dotnet itself.</summary>
    public IReadOnlyList<string>? Launcher { get; init; }

    public Task<DotnetCli.Result> RunAsync(string target, IReadOnlyDictionary<string, string> properties, params string[] extra)
    {
        var arguments = new List<string> { "build", ProjectPath, "-t:" + target, "-nologo", "-v:n",
            "-p:VddkOutputDirectory=" + OutputDirectory + "/", "-p:VddkIntermediateDirectory=" + IntermediateDirectory + "/" };
        arguments.AddRange(properties.Select(p => $"-p:{p.Key}={p.Value}"));
        arguments.AddRange(extra);
        return DotnetCli.RunAsync(DotnetCli.RepoRoot, arguments, Environment, TimeSpan.FromMinutes(5), Launcher);
    }

    /// <summary>Runs a target and returns the named properties as MSBuild holds them after it (-getProperty).</summary>
    public async Task<IReadOnlyDictionary<string, string>> RunForPropertiesAsync(string target, IReadOnlyDictionary<string, string> properties, params string[] names)
    {
        var result = await RunAsync(target, properties, [.. names.Select(n => "-getProperty:" + n)]);
        Assert.True(result.Succeeded, result.ToString());
        if (names.Length == 1)
        {
            // MSBuild prints a single requested property as its bare value.
            return new Dictionary<string, string> { [names[0]] = result.Output.Trim() };
        }
        var json = result.Output[result.Output.IndexOf('{')..];
        using var document = JsonDocument.Parse(json);
        return document.RootElement.GetProperty("Properties").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? string.Empty);
    }
}
