using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using VddkBuild.Diagnostics;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// The API server's <c>Warning</c> headers (<c>299 - "text"</c>: a deprecated API version, an admission policy's
/// warning), which KubernetesClient drops: written to the build log as kubectl writes them to stderr, each text once.
/// </summary>
internal sealed class ApiServerWarnings(string server) : DelegatingHandler
{
    private readonly ConcurrentDictionary<string, bool> _shown = new(StringComparer.Ordinal);

    /// <summary>Where warnings go; set once the build's log is known (the session), none before.</summary>
    public IBuildLog? Log { get; set; }

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (Log is { } log && response.Headers.Warning.Count > 0)
        {
            foreach (var warning in response.Headers.Warning)
            {
                var text = Unquote(warning.Text);
                if (text.Length > 0 && _shown.TryAdd(text, true))
                {
                    log.Info($"Warning from the API server {server}: {text}");
                }
            }
        }
        return response;
    }

    /// <summary>The text of an HTTP quoted-string: without its quotes, with its backslash escapes resolved.</summary>
    internal static string Unquote(string quoted)
    {
        var inner = quoted.Length >= 2 && quoted[0] == '"' && quoted[^1] == '"' ? quoted[1..^1] : quoted;
        var text = new StringBuilder(inner.Length);
        for (var i = 0; i < inner.Length; i++)
        {
            text.Append(inner[i] == '\\' && i + 1 < inner.Length ? inner[++i] : inner[i]);
        }
        return text.ToString().Trim();
    }
}
