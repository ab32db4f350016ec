namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>Paths inside the repository the tests were built from (found by walking up to VddkBuild.sln).</summary>
public static class RepositoryLayout
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    public static string Root => LazyRoot.Value;

    public static string Scripts => Path.Combine(Root, "scripts");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VddkBuild.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No VddkBuild.sln above '{AppContext.BaseDirectory}': run the tests from a checkout of the repository.");
    }
}
