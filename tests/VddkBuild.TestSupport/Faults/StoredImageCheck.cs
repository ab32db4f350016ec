using System.Security.Cryptography;
using System.Text.Json;

namespace VddkBuild.TestSupport.Faults;

/// <summary>What a tag points at in a registry's storage, and everything wrong with it.</summary>
public sealed record StoredTagState(string Repository, string Tag, string? ManifestDigest, IReadOnlyList<string> BlobDigests, IReadOnlyList<string> Problems)
{
    public bool Exists => ManifestDigest is not null;

    /// <summary>Absent, or present with every blob stored, linked to the repository, and of the right size and digest.</summary>
    public bool IsConsistent => Problems.Count == 0;

    public override string ToString() =>
        !Exists ? $"{Repository}:{Tag} absent"
        : IsConsistent ? $"{Repository}:{Tag} -> {ManifestDigest} ({BlobDigests.Count} blobs, all present and verified)"
        : $"{Repository}:{Tag} -> {ManifestDigest} BROKEN: {string.Join("; ", Problems)}";
}

/// <summary>
/// Reads docker-registry's filesystem storage directly (not through any client): the tag's link, the manifest
/// blob, and for each config and layer descriptor the stored blob (size and sha256 recomputed) and the
/// repository's layer link that makes the registry serve it. Independent of the project's registry code.
/// </summary>
public static class StoredImageCheck
{
    public static StoredTagState Inspect(string storageDirectory, string repository, string tag)
    {
        var root = Path.Combine(storageDirectory, "docker", "registry", "v2");
        var repo = Path.Combine(root, "repositories", repository);
        var tagLink = Path.Combine(repo, "_manifests", "tags", tag, "current", "link");
        if (!File.Exists(tagLink))
        {
            return new StoredTagState(repository, tag, null, [], []);
        }
        var problems = new List<string>();
        var manifestDigest = File.ReadAllText(tagLink).Trim();
        var manifest = ReadBlob(root, manifestDigest, null, problems, "manifest");
        var blobs = new List<string>();
        if (manifest is not null)
        {
            using var document = JsonDocument.Parse(manifest);
            var descriptors = new List<JsonElement>();
            if (document.RootElement.TryGetProperty("config", out var config))
            {
                descriptors.Add(config);
            }
            if (document.RootElement.TryGetProperty("layers", out var layers))
            {
                descriptors.AddRange(layers.EnumerateArray());
            }
            foreach (var descriptor in descriptors)
            {
                var digest = descriptor.GetProperty("digest").GetString()!;
                blobs.Add(digest);
                ReadBlob(root, digest, descriptor.GetProperty("size").GetInt64(), problems, "blob");
                if (!File.Exists(Path.Combine(repo, "_layers", "sha256", Hex(digest), "link")))
                {
                    problems.Add($"blob {digest} is not linked to repository {repository} (the registry would answer 404)");
                }
            }
        }
        return new StoredTagState(repository, tag, manifestDigest, blobs, problems);
    }

    private static byte[]? ReadBlob(string root, string digest, long? size, List<string> problems, string what)
    {
        if (!digest.StartsWith("sha256:", StringComparison.Ordinal))
        {
            problems.Add($"{what} digest '{digest}' is not sha256");
            return null;
        }
        var hex = Hex(digest);
        var data = Path.Combine(root, "blobs", "sha256", hex[..2], hex, "data");
        if (!File.Exists(data))
        {
            problems.Add($"{what} {digest} is missing from storage");
            return null;
        }
        var bytes = File.ReadAllBytes(data);
        if (size is { } expected && bytes.LongLength != expected)
        {
            problems.Add($"{what} {digest} has {bytes.LongLength} bytes, the manifest says {expected}");
        }
        var actual = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (actual != digest)
        {
            problems.Add($"{what} {digest} holds content with digest {actual}");
        }
        return bytes;
    }

    private static string Hex(string digest) => digest["sha256:".Length..];
}
