using VddkBuild.Diagnostics;

namespace VddkBuild.IO;

/// <summary>
/// Deletes the temporary files of builds that were killed (<c>kill -9</c>, an OOM kill, a cancelled CI job) before
/// they could rename or delete them: nothing else removes them, and each is as large as a layer or an image. Only
/// files that a caller recognises as its own unique temporary names are candidates, and one is taken for abandoned
/// only when nobody holds it open (a writing build holds it locked, which the exclusive open here is refused) and it
/// has not been written for <see cref="AbandonedAfter"/> (a build may close its copy and wait before renaming it).
/// </summary>
internal static class AbandonedTemporaryFiles
{
    /// <summary>How long a temporary file must have been left alone before a build takes it for abandoned.</summary>
    internal static readonly TimeSpan AbandonedAfter = TimeSpan.FromHours(1);

    /// <param name="directory">The folder the temporary files are written in.</param>
    /// <param name="isOurs">True for a file name that is one of the caller's own temporary names.</param>
    /// <param name="what">What such a file is, for the log ("a temporary layer file").</param>
    internal static void Remove(string directory, Func<string, bool> isOurs, string what, IBuildLog? log)
    {
        IEnumerable<FileInfo> candidates;
        try
        {
            candidates = new DirectoryInfo(directory).EnumerateFiles(".*.tmp").Where(f => isOurs(f.Name)).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return; // housekeeping only
        }
        var cutoff = DateTime.UtcNow - AbandonedAfter;
        foreach (var file in candidates)
        {
            if (file.LastWriteTimeUtc > cutoff)
            {
                continue;
            }
            try
            {
                using (new FileStream(file.FullName, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
                {
                    File.Delete(file.FullName);
                }
                log?.Detail($"Deleted '{file.FullName}', {what} an interrupted build left behind.");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // In use by a running build, or already gone.
            }
        }
    }
}
