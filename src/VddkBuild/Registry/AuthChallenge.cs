using System.Net.Http.Headers;
using System.Text;

namespace VddkBuild.Registry;

/// <summary>
/// One <c>WWW-Authenticate</c> challenge: a scheme (<c>Basic</c>, <c>Bearer</c>) and its parameters
/// (<c>realm</c>, <c>service</c>, <c>scope</c>, ...), parsed per RFC 7235 (quoted strings may hold commas).
/// </summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    public string? Realm => Parameters.GetValueOrDefault("realm");

    public string? Service => Parameters.GetValueOrDefault("service");

    /// <summary>Scopes the registry asked for (space separated in the header).</summary>
    public IReadOnlyList<string> Scopes =>
        Parameters.TryGetValue("scope", out var scope) ? scope.Split(' ', StringSplitOptions.RemoveEmptyEntries) : [];

    /// <summary>
    /// OpenShift's integrated registry: realm <c>.../openshift/token</c>, no service or scope; the token endpoint takes
    /// Basic auth with any user name and the token as password, and must be asked with GET.
    /// </summary>
    public bool IsOpenShift =>
        IsBearer && Realm is not null && Uri.TryCreate(Realm, UriKind.Absolute, out var realm)
        && realm.AbsolutePath.TrimEnd('/').EndsWith("/openshift/token", StringComparison.Ordinal);

    /// <summary>
    /// The challenge with a relative realm (zot names <c>/zot/auth/token</c>; a registry behind a path-mapping proxy
    /// may too) made absolute against the URI that was challenged, as regclient and containerd resolve it. An absolute
    /// realm is kept as it is. (On Unix, .NET would read <c>/path</c> as an absolute <c>file:</c> URI.)
    /// </summary>
    public AuthChallenge ResolveRealm(Uri challenged)
    {
        ArgumentNullException.ThrowIfNull(challenged);
        if (Realm is not { Length: > 0 } realm
            || (!realm.StartsWith('/') && Uri.TryCreate(realm, UriKind.Absolute, out _))
            || !Uri.TryCreate(challenged, realm, out var resolved))
        {
            return this;
        }
        var parameters = new Dictionary<string, string>(Parameters, StringComparer.OrdinalIgnoreCase) { ["realm"] = resolved.AbsoluteUri };
        return this with { Parameters = parameters };
    }

    /// <summary>The challenges of a 401 response, Bearer first (preferred), then Basic.</summary>
    public static IReadOnlyList<AuthChallenge> FromResponse(HttpResponseMessage response) =>
        [.. response.Headers.WwwAuthenticate.Select(FromHeader).OrderBy(c => c.IsBearer ? 0 : c.IsBasic ? 1 : 2)];

    public static AuthChallenge FromHeader(AuthenticationHeaderValue header) =>
        new(header.Scheme, ParseParameters(header.Parameter ?? string.Empty));

    /// <summary>Parses <c>Scheme k1="v1", k2=v2</c>.</summary>
    public static AuthChallenge Parse(string headerValue)
    {
        var text = headerValue.Trim();
        var space = text.IndexOf(' ');
        return space < 0
            ? new AuthChallenge(text, new Dictionary<string, string>())
            : new AuthChallenge(text[..space], ParseParameters(text[(space + 1)..]));
    }

    internal static Dictionary<string, string> ParseParameters(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i])))
            {
                i++;
            }
            var keyStart = i;
            while (i < text.Length && text[i] != '=' && text[i] != ',')
            {
                i++;
            }
            var key = text[keyStart..i].Trim();
            if (i >= text.Length || text[i] != '=')
            {
                continue;
            }
            i++; // '='
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }
            string value;
            if (i < text.Length && text[i] == '"')
            {
                var builder = new StringBuilder();
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }
                    builder.Append(text[i]);
                    i++;
                }
                i++; // closing quote
                value = builder.ToString();
            }
            else
            {
                var valueStart = i;
                while (i < text.Length && text[i] != ',')
                {
                    i++;
                }
                value = text[valueStart..i].Trim();
            }
            if (key.Length > 0)
            {
                result[key] = value;
            }
        }
        return result;
    }
}
