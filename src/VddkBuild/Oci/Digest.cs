using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace VddkBuild.Oci;

/// <summary>A content digest, <c>sha256:&lt;64 lowercase hex&gt;</c> (the only algorithm this project produces).</summary>
public readonly partial record struct Digest
{
    private Digest(string value) => Value = value;

    public string Value { get; }

    public string Algorithm => Value[..Value.IndexOf(':')];

    public string Hex => Value[(Value.IndexOf(':') + 1)..];

    public static Digest Parse(string value) =>
        TryParse(value, out var digest)
            ? digest
            : throw new VddkException(ErrorCodes.RegistryResponseInvalid, $"'{value}' is not a valid content digest (expected sha256:<64 hex> or sha512:<128 hex>).", value);

    public static bool TryParse(string? value, out Digest digest)
    {
        if (value is not null && DigestPattern().IsMatch(value))
        {
            digest = new Digest(value);
            return true;
        }
        digest = default;
        return false;
    }

    public static Digest FromSha256Bytes(ReadOnlySpan<byte> hash) => new("sha256:" + Convert.ToHexStringLower(hash));

    public static Digest Compute(ReadOnlySpan<byte> content) => FromSha256Bytes(SHA256.HashData(content));

    public override string ToString() => Value;

    [GeneratedRegex("^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")]
    private static partial Regex DigestPattern();
}
