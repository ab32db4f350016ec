using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using VddkBuild.Diagnostics;

namespace VddkBuild.Registry;

/// <summary>
/// Everything one run shares when talking to registries: connection pools per host, TLS trust (system + CA bundle),
/// credentials, the bearer token cache, retries, and the once-per-run insecure warnings. Create one per build
/// step, dispose it at the end.
/// </summary>
public sealed class RegistrySession : IDisposable
{
    private readonly ConcurrentDictionary<string, HostTransport> _transports = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, RegistryClient> _clients = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, RegistryClient> _forwardedTo = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, bool> _warnedInsecure = new(StringComparer.OrdinalIgnoreCase);
    private readonly RegistryTlsTrust _trust;
    private long _requestCount;

    public RegistrySession(RegistryTransportOptions options, ICredentialProvider credentials, IBuildLog log)
    {
        Options = options;
        Credentials = credentials;
        Log = log;
        Retry = new RetryPolicy(options.Retry, log);
        X509Certificate2Collection? bundle = string.IsNullOrWhiteSpace(options.CaBundlePath) ? null : CaBundle.Load(options.CaBundlePath);
        if (options.TrustedCertificates is { Count: > 0 } inProcess)
        {
            bundle ??= [];
            bundle.AddRange(inProcess);
        }
        _trust = new RegistryTlsTrust(bundle);
        Tokens = new BearerTokenCache();
        TokenClient = new BearerTokenClient(uri => TransportFor(uri).Invoker, options);
    }

    /// <summary>
    /// The usual wiring: <paramref name="options"/> plus <c>DOTNET_CONTAINER_INSECURE_REGISTRIES</c>, and the
    /// credential chain (in-process, environment, Docker/podman files).
    /// </summary>
    public static RegistrySession Create(RegistryTransportOptions options, CredentialOptions credentialOptions, IBuildLog log) =>
        new(options.WithEnvironment(credentialOptions.GetEnvironmentVariable), CredentialChain.Create(credentialOptions, log), log);

    public RegistryTransportOptions Options { get; }

    public ICredentialProvider Credentials { get; }

    public IBuildLog Log { get; }

    public RetryPolicy Retry { get; }

    /// <summary>HTTP requests sent so far (all hosts, token endpoints included).</summary>
    public long RequestCount => Interlocked.Read(ref _requestCount);

    internal BearerTokenCache Tokens { get; }

    internal BearerTokenClient TokenClient { get; }

    /// <summary>The client for a registry as written in <see cref="ImageReference.Registry"/>.</summary>
    public RegistryClient GetClient(string registry) =>
        _clients.GetOrAdd(registry, r =>
        {
            var client = new RegistryClient(this, r);
            if (client.Insecure && _warnedInsecure.TryAdd(r, true))
            {
                Log.Warn(ErrorCodes.InsecureRegistry,
                    $"Registry {r} is marked insecure (VddkRegistryInsecure, VddkInsecureRegistries, {RegistryTransportOptions.InsecureRegistriesVariable}, or insecure = true in registries.conf for a base image mirror): plain HTTP is allowed and its TLS certificate is not verified. Use VddkRegistryCaBundle instead for a registry with a private CA.");
            }
            return client;
        });

    public RegistryClient GetClient(ImageReference reference) => GetClient(reference.Registry);

    /// <summary>
    /// The client for a host a registry sent a request on to (an upload session or redirect on another host): it
    /// answers that host's own challenges, with credentials stored for that host by name only (in-process, credential
    /// files), never the environment's, which name no host.
    /// </summary>
    internal RegistryClient GetForwardedClient(string authority) =>
        _forwardedTo.GetOrAdd(authority, a => new RegistryClient(this, a, Credentials is CredentialChain chain ? chain.ForHostsByName() : Credentials));

    internal HostTransport TransportFor(Uri uri)
    {
        var origin = new Uri(uri.GetLeftPart(UriPartial.Authority));
        return _transports.GetOrAdd(origin.AbsoluteUri, _ =>
            new HostTransport(origin, Options.IsInsecure(origin.Authority), TrustFor(origin.Authority), Options, () => Interlocked.Increment(ref _requestCount)));
    }

    /// <summary>The run's trust, plus the CA certificates podman's certificate directories hold for <paramref name="authority"/>.</summary>
    private RegistryTlsTrust TrustFor(string authority)
    {
        var (certificates, folder) = RegistryCertsDirectory.CaCertificatesFor(authority, Options.CertificateDirectories, Log);
        if (certificates.Count > 0)
        {
            Log.Detail($"Registry {authority}: also trusting the {certificates.Count} CA certificate(s) in {folder}, as podman does.");
        }
        return _trust.With(certificates);
    }

    public void Dispose()
    {
        foreach (var transport in _transports.Values)
        {
            transport.Dispose();
        }
        _transports.Clear();
    }
}
