using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Xunit;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// A real S3 endpoint: a one-node Ceph cluster with the RADOS Gateway on 127.0.0.1 (scripts/ceph-rgw.sh), started once
/// per test run as an xunit collection fixture (~15 s) and stopped by the PIDs it started. Use with
/// <c>[Collection(CephRgw.CollectionName)]</c> and a constructor parameter <c>CephRgw ceph</c>; call
/// <see cref="Require"/> first in each test (skips locally when Ceph is not installed, fails in CI).
/// The collection definition lives in the integration test assembly (xunit requires that): CephRgwCollection.
/// </summary>
public sealed class CephRgw : IAsyncLifetime
{
    public const string CollectionName = "Ceph RGW";

    private static readonly string[] Tools = ["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool", "curl"];

    private string? _unavailable;
    private string? _directory;

    /// <summary><c>http://127.0.0.1:PORT</c>, for path-style S3 requests.</summary>
    public string Endpoint { get; private set; } = string.Empty;

    public string AccessKey { get; } = RandomToken(20);

    public string SecretKey { get; } = RandomToken(40);

    /// <summary>S3 region to sign with; RGW accepts any, the registry's S3 driver needs one.</summary>
    public string Region => "us-east-1";

    /// <summary>How long the cluster took to become ready (monitor, OSD, gateway, user).</summary>
    public TimeSpan StartTime { get; private set; }

    /// <summary>Skips locally / fails in CI when the cluster could not be started (tools missing or start failed).</summary>
    public void Require() => Requires.That(_unavailable is null, _unavailable ?? string.Empty);

    public async Task InitializeAsync()
    {
        var missing = Tools.Where(tool => Requires.Which(tool) is null).ToList();
        if (missing.Count > 0)
        {
            _unavailable = $"Ceph is not installed ({string.Join(", ", missing)} missing); run ./build.sh deps.";
            return;
        }
        _directory = Directory.CreateTempSubdirectory("vddkbuild-ceph-").FullName;
        var stopwatch = Stopwatch.StartNew();
        var lastError = string.Empty;
        // A port picked free can be taken before the daemons bind it; a second attempt with fresh ports settles that.
        for (var attempt = 0; attempt < 2 && Endpoint.Length == 0; attempt++)
        {
            var state = Path.Combine(_directory, $"cluster{attempt}");
            var result = await ProcessRunner.RunAsync(
                "bash",
                [Path.Combine(RepositoryLayout.Scripts, "ceph-rgw.sh"), "start", state,
                 "--port", FreePort.Next().ToString(CultureInfo.InvariantCulture),
                 "--mon-port", FreePort.Next().ToString(CultureInfo.InvariantCulture),
                 "--user", "vddkbuild-tests"],
                ChildEnvironment.Minimal().With("CEPH_RGW_ACCESS_KEY", AccessKey).With("CEPH_RGW_SECRET_KEY", SecretKey),
                TimeSpan.FromMinutes(4),
                redact: [AccessKey, SecretKey]);
            if (result.Succeeded)
            {
                State = state;
                Endpoint = result.StandardOutput.Trim().Split('\n')[^1].Trim();
            }
            else
            {
                lastError = new ProcessFailedException(result).Message;
                await StopAsync(state);
            }
        }
        StartTime = stopwatch.Elapsed;
        if (Endpoint.Length == 0)
        {
            _unavailable = $"Ceph RGW did not start: {lastError}";
        }
    }

    /// <summary>The cluster's state folder (logs under log/).</summary>
    public string? State { get; private set; }

    public async Task DisposeAsync()
    {
        if (State is not null)
        {
            await StopAsync(State);
        }
        if (_directory is not null)
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // A daemon still closing a log file; the temp folder is harmless.
            }
        }
    }

    /// <summary>An S3 client for this endpoint: path-style, plain HTTP, checksums only where S3 requires them (RGW 16 predates the SDK's default trailing checksums).</summary>
    public AmazonS3Client CreateClient()
    {
        Require();
        var config = new AmazonS3Config
        {
            ServiceURL = Endpoint,
            ForcePathStyle = true,
            UseHttp = true,
            AuthenticationRegion = Region,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 2,
            Timeout = TimeSpan.FromSeconds(60),
        };
        return new AmazonS3Client(new BasicAWSCredentials(AccessKey, SecretKey), config);
    }

    /// <summary>Creates a bucket (S3 names: 3-63 lowercase letters, digits, hyphens).</summary>
    public async Task CreateBucketAsync(string name, CancellationToken cancellationToken = default)
    {
        using var client = CreateClient();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = name }, cancellationToken);
    }

    /// <summary>Every object under <paramref name="prefix"/> (all pages).</summary>
    public async Task<IReadOnlyList<S3Object>> ListObjectsAsync(string bucket, string prefix = "", CancellationToken cancellationToken = default)
    {
        using var client = CreateClient();
        var objects = new List<S3Object>();
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix };
        ListObjectsV2Response response;
        do
        {
            response = await client.ListObjectsV2Async(request, cancellationToken);
            objects.AddRange(response.S3Objects ?? []);
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
        return objects;
    }

    /// <summary>A bucket name unique to this run, e.g. for one test.</summary>
    public static string UniqueBucketName(string purpose) =>
        $"{purpose.ToLowerInvariant()}-{Guid.NewGuid():N}"[..Math.Min(63, purpose.Length + 33)];

    private static async Task StopAsync(string state)
    {
        await ProcessRunner.RunAsync("bash", [Path.Combine(RepositoryLayout.Scripts, "ceph-rgw.sh"), "stop", state], timeout: TimeSpan.FromMinutes(1));
    }

    private static string RandomToken(int length)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        return RandomNumberGenerator.GetString(alphabet, length);
    }
}
