using System.Net.Http.Headers;
using k8s.Authentication;

namespace VddkBuild.Cluster;

/// <summary>
/// A kubeconfig user's <c>tokenFile</c> as client-go uses it (transport.NewBearerAuthWithRefreshRoundTripper): the
/// file is re-read (at most once a minute) and its content, while it can be read, is the bearer token, also when the
/// user has a <c>token</c> too; when a read fails, the last token read stands, and before any read the user's
/// <c>token</c>. A rotated token file (a projected service account token, a CI secret) is followed during a build.
/// </summary>
internal sealed class KubeconfigTokenFile : ITokenProvider
{
    private static readonly TimeSpan ReadAgainAfter = TimeSpan.FromMinutes(1);

    private readonly string _path;
    private readonly Func<DateTime> _now;
    private readonly object _gate = new();
    private string _token;
    private DateTime _readAgainAt;

    /// <param name="fallback">The user's <c>token</c>; empty when it has none (the file must then be readable now).</param>
    public KubeconfigTokenFile(string path, string? fallback, string userName, Func<DateTime>? now = null)
    {
        _path = path;
        _now = now ?? (() => DateTime.UtcNow);
        var first = TryRead(out var failure);
        if (first is null && string.IsNullOrWhiteSpace(fallback))
        {
            throw new k8s.Exceptions.KubeConfigException($"user \"{userName}\" has tokenFile '{path}', which {failure}");
        }
        _token = first ?? fallback!.Trim();
        _readAgainAt = _now() + ReadAgainAfter;
    }

    /// <summary>The token a request gets now.</summary>
    public string Token
    {
        get
        {
            lock (_gate)
            {
                if (_now() >= _readAgainAt)
                {
                    _token = TryRead(out _) ?? _token;
                    _readAgainAt = _now() + ReadAgainAfter;
                }
                return _token;
            }
        }
    }

    public Task<AuthenticationHeaderValue> GetAuthenticationHeaderAsync(CancellationToken cancellationToken) =>
        Task.FromResult(new AuthenticationHeaderValue("Bearer", Token));

    private string? TryRead(out string failure)
    {
        try
        {
            var token = File.ReadAllText(_path).Trim();
            failure = "is empty";
            return token.Length > 0 ? token : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            failure = $"cannot be read ({ex.Message})";
            return null;
        }
    }
}
