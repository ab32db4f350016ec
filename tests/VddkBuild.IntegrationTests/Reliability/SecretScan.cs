using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>Looks for secrets (as text, UTF-16, and inside a Basic Authorization value) in text and in files.</summary>
internal sealed partial class SecretScan(IReadOnlyList<string> secrets)
{
    /// <summary>The forms a secret can take in a log or file: itself, and base64 of "user:secret" for Basic auth.</summary>
    public static SecretScan For(string user, params string[] secrets) =>
        new([.. secrets, .. secrets.Select(s => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{s}")))]);

    public IReadOnlyList<string> Secrets => secrets;

    public void AssertNotIn(string text, string where)
    {
        foreach (var secret in secrets)
        {
            var at = text.IndexOf(secret, StringComparison.Ordinal);
            if (at >= 0)
            {
                // Show where, never the secret itself.
                var lineStart = text.LastIndexOf('\n', at) + 1;
                var lineEnd = text.IndexOf('\n', at);
                var line = text[lineStart..(lineEnd < 0 ? text.Length : lineEnd)].Replace(secret, "***", StringComparison.Ordinal);
                Assert.Fail($"a secret appears in {where}, in the line: {line}");
            }
        }
        Assert.False(JwtPattern().IsMatch(text), $"a bearer token (JWT) appears in {where}: {JwtPattern().Match(text).Value[..Math.Min(20, JwtPattern().Match(text).Value.Length)]}...");
    }

    /// <summary>Every file below <paramref name="directory"/>, read as bytes (binary files too), gzip members opened.</summary>
    public void AssertNotInFiles(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }
        foreach (var file in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(file);
            AssertNotInBytes(bytes, file);
            if (bytes.Length > 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
            {
                AssertNotInBytes(Gunzip(bytes), file + " (decompressed)");
            }
        }
    }

    public void AssertNotInBytes(byte[] bytes, string where)
    {
        foreach (var secret in secrets)
        {
            Assert.False(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)) >= 0, $"a secret appears in {where}");
            Assert.False(bytes.AsSpan().IndexOf(Encoding.Unicode.GetBytes(secret)) >= 0, $"a secret appears (UTF-16) in {where}");
        }
    }

    public bool AppearsIn(byte[] bytes) => secrets.Any(s => bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(s)) >= 0);

    public static byte[] Gunzip(byte[] bytes)
    {
        using var input = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    /// <summary>A compact JWS (header.payload.signature), the form of registry bearer tokens.</summary>
    [GeneratedRegex(@"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}")]
    private static partial Regex JwtPattern();
}
