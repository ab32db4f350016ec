using System.Security.Cryptography;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>S3 keys of one RGW user. <see cref="ToString"/> never shows the secret.</summary>
public sealed record RgwUserKeys(string Uid, string AccessKey, string SecretKey)
{
    public override string ToString() => $"RGW user {Uid} (keys hidden)";
}

/// <summary>Creates RGW users with <c>radosgw-admin</c> against the test Ceph cluster, as NooBaa creates an account per claim.</summary>
public sealed class RgwUsers(CephRgw ceph)
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public async Task<RgwUserKeys> CreateAsync(string uid, CancellationToken cancellationToken)
    {
        ceph.Require();
        var keys = new RgwUserKeys(uid, RandomNumberGenerator.GetString(Alphabet.AsSpan(0, 26), 20), RandomNumberGenerator.GetString(Alphabet, 40));
        var environment = ChildEnvironment.Minimal().With("CEPH_CONF", Path.Combine(ceph.State!, "ceph.conf"));
        var result = await ProcessRunner.RunAsync("radosgw-admin",
            ["user", "create", $"--uid={uid}", $"--display-name={uid}", $"--access-key={keys.AccessKey}", $"--secret={keys.SecretKey}"],
            environment, TimeSpan.FromMinutes(1), redact: [keys.AccessKey, keys.SecretKey], cancellationToken: cancellationToken);
        result.EnsureSuccess();
        return keys;
    }
}
