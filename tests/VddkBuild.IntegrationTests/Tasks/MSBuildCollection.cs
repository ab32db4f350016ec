namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>Tests that run dotnet build on the in-repo sample share its obj/ folder, so they run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class MSBuildCollection
{
    public const string Name = "msbuild";
}
