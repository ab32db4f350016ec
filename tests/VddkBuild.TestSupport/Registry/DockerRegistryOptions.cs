namespace VddkBuild.TestSupport.Registry;

/// <summary>How to configure a test docker-registry.</summary>
public sealed record DockerRegistryOptions
{
    /// <summary>Serve HTTPS with this CA's server certificate.</summary>
    public TestCertificateAuthority? Tls { get; init; }

    /// <summary>Basic auth with these users (bcrypt htpasswd file made with <c>htpasswd -B</c>).</summary>
    public IReadOnlyDictionary<string, string>? HtpasswdUsers { get; init; }

    /// <summary>Bearer token auth against a token server of the tests' own.</summary>
    public RegistryTokenSettings? Token { get; init; }

    /// <summary>S3 storage instead of a temporary folder (e.g. Ceph RGW on loopback).</summary>
    public RegistryS3Settings? S3 { get; init; }
}

/// <summary><c>auth.token</c>: realm URL, service name, issuer and the PEM bundle that verifies token signatures.</summary>
public sealed record RegistryTokenSettings(string Realm, string Service, string Issuer, string RootCertBundlePath);

/// <summary><c>storage.s3</c> settings, as the OpenShift operator writes them.</summary>
public sealed record RegistryS3Settings(string AccessKey, string SecretKey, string RegionEndpoint, string Bucket, string Region = "us-east-1", string RootDirectory = "/docker");
