using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// The lib-bucket-provisioner controller behind NooBaa's storage class, wired to a real Ceph RGW: for each
/// ObjectBucketClaim of its storage class it creates an RGW user (the claim's keys) and a REAL bucket owned by it,
/// then a Secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and a ConfigMap (BUCKET_*) named after the claim, and
/// sets <c>status.phase: Bound</c>. A bucket name that is taken (bucket names are global) leaves the claim Pending
/// with a Warning event <c>Bucket "x" already exists</c>, as the real provisioner does - it never sets Failed.
/// </summary>
public sealed class ObjectBucketProvisioner : IDisposable
{
    public const string DefaultStorageClass = "openshift-storage.noobaa.io";

    private readonly LoopbackKubeApiServer _api;
    private readonly CephRgw _ceph;
    private readonly RgwUsers _users;
    private readonly string _storageClass;
    private readonly IDisposable _subscription;
    private int _bucketsCreated;

    public ObjectBucketProvisioner(LoopbackKubeApiServer api, CephRgw ceph, string storageClass = DefaultStorageClass)
    {
        _api = api;
        _ceph = ceph;
        _users = new RgwUsers(ceph);
        _storageClass = storageClass;
        _subscription = api.OnChange(KubeResources.ObjectBucketClaims, HandleAsync);
    }

    /// <summary>Buckets this provisioner created in RGW.</summary>
    public int BucketsCreated => Volatile.Read(ref _bucketsCreated);

    private async Task HandleAsync(KubeObjectChange change, CancellationToken cancellationToken)
    {
        if (change.Type == KubeChangeType.Deleted)
        {
            return;
        }
        var store = _api.Store;
        var ns = change.Namespace!;
        var name = change.Name;
        // Always act on the stored object: changes queue up, and this controller's own writes produce more of them.
        var claim = store.Get(KubeResources.ObjectBucketClaims, ns, name);
        if (claim is null || claim["spec"]?["storageClassName"]?.GetValue<string>() != _storageClass
            || claim["status"]?["phase"]?.GetValue<string>() == "Bound")
        {
            return;
        }
        var bucket = claim["spec"]?["bucketName"]?.GetValue<string>();
        if (string.IsNullOrEmpty(bucket))
        {
            var prefix = claim["spec"]?["generateBucketName"]?.GetValue<string>() ?? name;
            bucket = $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 37)];
            store.Update(KubeResources.ObjectBucketClaims, ns, name, c => c["spec"]!["bucketName"] = bucket);
        }
        if (claim["status"]?["phase"] is null)
        {
            store.UpdateStatus(KubeResources.ObjectBucketClaims, ns, name, s => s["phase"] = "Pending");
        }

        var keys = await _users.CreateAsync($"obc-{ns}-{name}-{Guid.NewGuid():N}"[..Math.Min(64, ns.Length + name.Length + 14)], cancellationToken);
        using (var client = CreateClient(keys))
        {
            try
            {
                await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket }, cancellationToken);
            }
            catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.Conflict)
            {
                // NooBaa bucket names are global: the claim waits forever and says why in an event.
                store.RecordEvent(KubeResources.ObjectBucketClaims, ns, name, "Warning", "ProvisioningFailed",
                    $"failed to provision bucket: Bucket \"{bucket}\" already exists", "openshift-storage.noobaa.io/obc");
                return;
            }
        }
        Interlocked.Increment(ref _bucketsCreated);

        var owner = new JsonArray(new JsonObject
        {
            ["apiVersion"] = KubeResources.ObjectBucketClaims.ApiVersion,
            ["kind"] = KubeResources.ObjectBucketClaims.Kind,
            ["name"] = name,
            ["uid"] = claim["metadata"]!["uid"]!.GetValue<string>(),
        });
        store.Create(KubeResources.Secrets, ns, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["ownerReferences"] = owner.DeepClone() },
            ["type"] = "Opaque",
            ["data"] = new JsonObject
            {
                ["AWS_ACCESS_KEY_ID"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(keys.AccessKey)),
                ["AWS_SECRET_ACCESS_KEY"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(keys.SecretKey)),
            },
        });
        store.Create(KubeResources.ConfigMaps, ns, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["ownerReferences"] = owner.DeepClone() },
            ["data"] = new JsonObject
            {
                ["BUCKET_NAME"] = bucket,
                ["BUCKET_HOST"] = "s3.openshift-storage.svc",
                ["BUCKET_PORT"] = "443",
                ["BUCKET_REGION"] = "us-east-1",
                ["BUCKET_SUBREGION"] = "",
            },
        });
        store.UpdateStatus(KubeResources.ObjectBucketClaims, ns, name, s => s["phase"] = "Bound");
    }

    private AmazonS3Client CreateClient(RgwUserKeys keys) => new(new BasicAWSCredentials(keys.AccessKey, keys.SecretKey), new AmazonS3Config
    {
        ServiceURL = _ceph.Endpoint,
        ForcePathStyle = true,
        UseHttp = true,
        AuthenticationRegion = _ceph.Region,
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        MaxErrorRetry = 2,
    });

    public void Dispose() => _subscription.Dispose();
}
