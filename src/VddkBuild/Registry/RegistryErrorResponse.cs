using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// The distribution spec's error body, <c>{"errors":[{"code","message","detail"}]}</c>, reduced to a line that can be
/// quoted in an error message (codes and messages only; details can be large).
/// </summary>
public static class RegistryErrorResponse
{
    private const int MaxBodyBytes = 64 * 1024;

    /// <summary>Error fields of bodies that are not the spec's <c>errors</c> list, in the order they are quoted.</summary>
    private static readonly string[] OwnErrorFields = ["error", "error_description", "details", "detail", "message"];

    /// <param name="secrets">Texts never quoted (a credential in the forms it was sent), taken out before anything is shortened.</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<string> ReadSummaryAsync(HttpResponseMessage response, CancellationToken cancellationToken, IReadOnlyList<string>? secrets = null)
    {
        try
        {
            // Buffered, so that the body can be summarized more than once (a caller may look before the error is raised).
            await response.Content.LoadIntoBufferAsync(MaxBodyBytes, cancellationToken).ConfigureAwait(false);
            return Summarize(await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false), secrets);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or InvalidOperationException)
        {
            // Larger than the limit: read its beginning below.
        }
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[MaxBodyBytes];
            var total = 0;
            int read;
            while (total < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken).ConfigureAwait(false)) > 0)
            {
                total += read;
            }
            return Summarize(buffer.AsSpan(0, total), secrets);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or InvalidOperationException)
        {
            return string.Empty;
        }
    }

    /// <param name="secrets">Texts never quoted, replaced by <c>***</c> before any text is shortened (a secret cut in two would leave its beginning).</param>
    public static string Summarize(ReadOnlySpan<byte> body, IReadOnlyList<string>? secrets = null)
    {
        if (body.IsEmpty)
        {
            return string.Empty;
        }
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
            {
                var parts = new List<string>();
                foreach (var error in errors.EnumerateArray().Take(5))
                {
                    var code = error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String ? Scrub(c.GetString(), secrets) : null;
                    var message = error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? Scrub(m.GetString(), secrets) : null;
                    parts.Add(string.Join(": ", new[] { code, message }.Where(p => !string.IsNullOrEmpty(p))));
                }
                return string.Join("; ", parts.Where(p => p.Length > 0));
            }
            // Token endpoints answer in their own shapes: Docker Hub {"details": ...}, OAuth2 {"error", "error_description"}.
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                var fields = OwnErrorFields
                    .Select(name => document.RootElement.TryGetProperty(name, out var field) && field.ValueKind == JsonValueKind.String ? field.GetString() : null)
                    .Select(text => Excerpt(Scrub(text, secrets)))
                    .Where(text => text.Length > 0)
                    .ToList();
                if (fields.Count > 0)
                {
                    // Quoted like any text that is not the spec's error list (no error code to act on).
                    return $"\"{string.Join(": ", fields)}\"";
                }
            }
        }
        catch (JsonException)
        {
            // Not the spec's JSON: fall through to a short text excerpt.
        }
        var clean = Excerpt(Scrub(Encoding.UTF8.GetString(body), secrets));
        return clean.Length == 0 ? string.Empty : $"\"{clean}\"";
    }

    /// <summary>A registry's own words as a message quotes them: no control characters, trimmed, at most 200 characters.</summary>
    internal static string Excerpt(string? text)
    {
        var clean = new string([.. (text ?? string.Empty).Where(ch => !char.IsControl(ch))]).Trim();
        return clean.Length > 200 ? clean[..200] + "..." : clean;
    }

    /// <summary><paramref name="text"/> with each of <paramref name="secrets"/> (longest first) replaced by <c>***</c>.</summary>
    private static string? Scrub(string? text, IReadOnlyList<string>? secrets)
    {
        if (text is null || secrets is null)
        {
            return text;
        }
        foreach (var secret in secrets.Where(s => s.Length > 0).OrderByDescending(s => s.Length))
        {
            text = text.Replace(secret, "***", StringComparison.Ordinal);
        }
        return text;
    }
}
