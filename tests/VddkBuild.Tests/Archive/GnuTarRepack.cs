using VddkBuild.TestSupport.Archives;
using VddkBuild.Tests.Layers;

namespace VddkBuild.Tests.Archive;

/// <summary>Archives made by GNU tar itself, for what .NET's TarWriter cannot write (huge owner ids, --sparse).</summary>
internal static class GnuTarRepack
{
    /// <summary>
    /// Unpacks <paramref name="builder"/>'s tree into a folder, lets <paramref name="prepare"/> change it, and packs
    /// it again as <paramref name="archivePath"/> with GNU tar and <paramref name="tarOptions"/> (e.g. --format=posix).
    /// </summary>
    public static string Write(VddkArchiveBuilder builder, string archivePath, Action<string>? prepare, params string[] tarOptions)
    {
        var work = Directory.CreateTempSubdirectory("vddkbuild-gnutar-").FullName;
        try
        {
            builder.Compression = ArchiveCompression.None;
            var source = Path.Combine(work, "source.tar");
            builder.Write(source);
            var tree = Directory.CreateDirectory(Path.Combine(work, "tree")).FullName;
            CliTool.Run("tar", "-xf", source, "-C", tree);
            prepare?.Invoke(tree);
            CliTool.Run("tar", ["-C", tree, .. tarOptions, "-cf", archivePath, VddkArchiveBuilder.Top]);
            return archivePath;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
