namespace VddkBuild.IO;

/// <summary>Where an output really goes when its path is a symlink.</summary>
internal static class OutputPath
{
    /// <summary>
    /// The path a write to <paramref name="path"/> must replace: a symlink there (a "latest" name, a link to a mounted
    /// volume) is followed to the file or folder it names, as cp and a shell's redirection do, also when that does not
    /// exist yet; outputs are written under a temporary name beside their target and renamed, which would otherwise put
    /// a plain file or folder in the link's place and leave what it names stale. A link loop throws IOException.
    /// </summary>
    public static string FollowSymlink(string path) =>
        FileKind.IsSymlink(path) && new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true) is { } final ? final.FullName : path;
}
