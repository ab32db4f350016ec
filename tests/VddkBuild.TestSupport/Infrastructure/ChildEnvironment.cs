using System.Collections;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// The complete, explicit environment of a child process. It starts from a minimal set (PATH, HOME, LANG, TMPDIR)
/// and never inherits the caller's variables: the workplace sets AWS_CA_BUNDLE, SSL_CERT_FILE and friends, which make
/// Go tools (docker-registry's AWS SDK) panic and would let tests pass only because of ambient trust settings.
/// Immutable: <see cref="With"/> returns a copy.
/// </summary>
public sealed class ChildEnvironment : IReadOnlyDictionary<string, string>
{
    private const string FallbackPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private readonly Dictionary<string, string> _variables;

    private ChildEnvironment(Dictionary<string, string> variables) => _variables = variables;

    /// <summary>PATH (the caller's, so tools found by <see cref="Requires.Tool"/> are found by the child), HOME, LANG=C.UTF-8, TMPDIR.</summary>
    public static ChildEnvironment Minimal()
    {
        var variables = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = Environment.GetEnvironmentVariable("PATH") is { Length: > 0 } path ? path : FallbackPath,
            ["HOME"] = Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home ? home : "/root",
            ["LANG"] = "C.UTF-8",
            ["TMPDIR"] = Path.GetTempPath().TrimEnd('/') is { Length: > 0 } tmp ? tmp : "/tmp",
        };
        return new ChildEnvironment(variables);
    }

    public ChildEnvironment With(string name, string value)
    {
        var copy = new Dictionary<string, string>(_variables, StringComparer.Ordinal) { [name] = value };
        return new ChildEnvironment(copy);
    }

    public ChildEnvironment With(IEnumerable<KeyValuePair<string, string>> variables)
    {
        var copy = new Dictionary<string, string>(_variables, StringComparer.Ordinal);
        foreach (var (name, value) in variables)
        {
            copy[name] = value;
        }
        return new ChildEnvironment(copy);
    }

    public ChildEnvironment Without(string name)
    {
        var copy = new Dictionary<string, string>(_variables, StringComparer.Ordinal);
        copy.Remove(name);
        return new ChildEnvironment(copy);
    }

    public string this[string key] => _variables[key];

    public IEnumerable<string> Keys => _variables.Keys;

    public IEnumerable<string> Values => _variables.Values;

    public int Count => _variables.Count;

    public bool ContainsKey(string key) => _variables.ContainsKey(key);

    public bool TryGetValue(string key, out string value) => _variables.TryGetValue(key, out value!);

    public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => _variables.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
