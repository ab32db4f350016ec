using System.Text.RegularExpressions;

namespace VddkBuild.Images;

/// <summary>Validates names for <c>org.opencontainers.image.ref.name</c> in an OCI layout's index.json.</summary>
internal static partial class OciTagName
{
    public static IReadOnlyList<string> Validate(IReadOnlyList<string> tags)
    {
        foreach (var tag in tags)
        {
            if (tag is null || !RefName().IsMatch(tag))
            {
                throw new VddkException(ErrorCodes.TagInvalid,
                    $"'{tag}' cannot name an image in an OCI layout. Use letters, digits and . _ - : @ + / between them, e.g. 8.0.1 or vddk:8.0.1.", tag);
            }
        }
        return [.. tags.Distinct(StringComparer.Ordinal)];
    }

    // image-spec annotations.md: ref ::= component ("/" component)*; component ::= alphanum (separator alphanum)*
    [GeneratedRegex(@"^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$")]
    private static partial Regex RefName();
}
