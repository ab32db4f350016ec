using System.Text;
using VddkBuild.TestSupport.Images;

namespace VddkBuild.Bench;

/// <summary>
/// A base the size of ubi-minimal (the product's default base): the stand-in base for linux/amd64 alone, its one gzip
/// layer grown to about 39 MB (about 102 MB of tar: shared-library-like random bytes and compressible text). The same
/// bytes on every run (fixed seed; the stand-in's fixed times).
/// </summary>
internal static class UbiSizedBase
{
    public static void WriteOciLayout(string directory) =>
        StandInBaseImage.WriteOciLayout(directory, [new StandInPlatform("linux", "amd64", null)], Payload());

    private static List<StandInFile> Payload()
    {
        var random = new Random(39);
        var files = new List<StandInFile>();
        // ~15 MB that gzip cannot shrink (code), ~86 MB of text it shrinks to about a quarter: ~39 MB of gzip in all.
        for (var i = 0; i < 15; i++)
        {
            var bytes = new byte[1_000_000];
            random.NextBytes(bytes);
            files.Add(new StandInFile($"usr/lib64/lib{i}.so.1", bytes, 0b111_101_101));
        }
        var words = Enumerable.Range(0, 5000).Select(i => string.Concat(Enumerable.Repeat($"w{i}", 1 + random.Next(4)))).ToArray();
        for (var i = 0; i < 86; i++)
        {
            var text = new StringBuilder(1_000_100);
            while (text.Length < 1_000_000)
            {
                text.Append(words[random.Next(words.Length)]).Append(' ');
            }
            files.Add(new StandInFile($"usr/share/doc/f{i}.txt", Encoding.ASCII.GetBytes(text.ToString(0, 1_000_000))));
        }
        return files;
    }
}
