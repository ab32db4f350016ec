using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// Label selectors (<c>a=b</c>, <c>a!=b</c>, <c>a</c>, <c>!a</c>, <c>a in (x,y)</c>, <c>a notin (x,y)</c>) and field
/// selectors (<c>involvedObject.name=x</c>, <c>metadata.name!=y</c>; any dotted path) over stored objects.
/// </summary>
public static class KubeSelectors
{
    public static Func<JsonObject, bool> Parse(string? labelSelector, string? fieldSelector)
    {
        var labels = ParseLabels(labelSelector);
        var fields = ParseFields(fieldSelector);
        return obj => labels.All(match => match(obj["metadata"]?["labels"] as JsonObject)) && fields.All(match => match(obj));
    }

    private static List<Func<JsonObject?, bool>> ParseLabels(string? selector)
    {
        var result = new List<Func<JsonObject?, bool>>();
        foreach (var term in SplitTerms(selector))
        {
            string? Label(JsonObject? labels, string key) => labels?[key]?.GetValue<string>();
            var notIn = term.IndexOf(" notin ", StringComparison.Ordinal);
            var inSet = term.IndexOf(" in ", StringComparison.Ordinal);
            if (notIn > 0 || inSet > 0)
            {
                var at = notIn > 0 ? notIn : inSet;
                var setKey = term[..at].Trim();
                var values = term[(term.IndexOf('(') + 1)..term.LastIndexOf(')')].Split(',').Select(v => v.Trim()).ToHashSet();
                var negate = notIn > 0;
                result.Add(labels =>
                {
                    var value = Label(labels, setKey);
                    return negate ? value is null || !values.Contains(value) : value is not null && values.Contains(value);
                });
            }
            else if (TrySplitComparison(term, out var compareKey, out var value, out var equal))
            {
                result.Add(labels => equal ? Label(labels, compareKey) == value : Label(labels, compareKey) != value);
            }
            else if (term.StartsWith('!'))
            {
                var absentKey = term[1..].Trim();
                result.Add(labels => labels?.ContainsKey(absentKey) != true);
            }
            else
            {
                var presentKey = term.Trim();
                result.Add(labels => labels?.ContainsKey(presentKey) == true);
            }
        }
        return result;
    }

    private static List<Func<JsonObject, bool>> ParseFields(string? selector)
    {
        var result = new List<Func<JsonObject, bool>>();
        foreach (var term in SplitTerms(selector))
        {
            if (!TrySplitComparison(term, out var path, out var value, out var equal))
            {
                throw new KubeStatusException(KubeStatus.BadRequest($"invalid field selector term \"{term}\""));
            }
            var segments = path.Split('.');
            result.Add(obj =>
            {
                JsonNode? node = obj;
                foreach (var segment in segments)
                {
                    node = (node as JsonObject)?[segment];
                }
                var actual = node is JsonValue v ? v.ToString() : "";
                return equal ? actual == value : actual != value;
            });
        }
        return result;
    }

    private static bool TrySplitComparison(string term, out string key, out string value, out bool equal)
    {
        foreach (var (op, isEqual) in new[] { ("!=", false), ("==", true), ("=", true) })
        {
            var at = term.IndexOf(op, StringComparison.Ordinal);
            if (at > 0)
            {
                key = term[..at].Trim();
                value = term[(at + op.Length)..].Trim();
                equal = isEqual;
                return true;
            }
        }
        key = value = "";
        equal = false;
        return false;
    }

    /// <summary>Splits on commas outside parentheses (<c>a in (x,y),b=c</c> has two terms).</summary>
    private static IEnumerable<string> SplitTerms(string? selector)
    {
        if (string.IsNullOrWhiteSpace(selector))
        {
            yield break;
        }
        var depth = 0;
        var start = 0;
        for (var i = 0; i < selector.Length; i++)
        {
            switch (selector[i])
            {
                case '(': depth++; break;
                case ')': depth--; break;
                case ',' when depth == 0:
                    if (i > start) yield return selector[start..i];
                    start = i + 1;
                    break;
            }
        }
        if (start < selector.Length)
        {
            yield return selector[start..];
        }
    }
}
