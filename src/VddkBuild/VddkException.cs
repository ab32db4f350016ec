namespace VddkBuild;

/// <summary>
/// The one error type the engine throws for anything a user can act on. It carries a stable code (VDDKnnnn, see
/// <see cref="ErrorCodes"/>), a message saying what is wrong and what to do, and the offending path or URL.
/// MSBuild tasks turn it into an error with that code; nothing else should reach the user as a bare exception.
/// Messages must never contain a secret (token, password, key).
/// </summary>
public sealed class VddkException : Exception
{
    public VddkException(string code, string message, string? subject = null, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Subject = subject;
    }

    /// <summary>Stable error code, e.g. VDDK1004.</summary>
    public string Code { get; }

    /// <summary>The file, archive entry, URL or object the error is about, if any.</summary>
    public string? Subject { get; }

    public override string ToString() => $"{Code}: {Message}";

    /// <summary>Another exception's message to go inside a sentence of ours: without its own closing period.</summary>
    public static string Reason(Exception exception) => exception.Message.TrimEnd().TrimEnd('.');
}
