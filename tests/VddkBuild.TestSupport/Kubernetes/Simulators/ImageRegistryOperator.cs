using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// The cluster-image-registry-operator, simulated on real processes. On every change of
/// <c>configs.imageregistry.operator.openshift.io/cluster</c>, of its credentials secret or of a config map in
/// openshift-config it syncs like the real one: exactly one storage type, a region, the trusted CA config map with
/// ca-bundle.crt, secret <c>image-registry-private-configuration-user</c> with both keys, and the bucket reachable
/// through regionEndpoint trusting the system store plus that bundle. Problems show as Progressing=True reason=Error with the real
/// operator's wording; otherwise docker-registry is (re)started on the S3 driver - only when the rendered settings
/// differ (<see cref="RestartCount"/>) - and status.observedGeneration, readyReplicas, conditions, ClusterOperator
/// image-registry and, with <c>spec.defaultRoute</c>, Route default-route (an OpenShift-style auth front) follow.
/// </summary>
public sealed class ImageRegistryOperator : IAsyncDisposable
{
    public const string Namespace = "openshift-image-registry";
    public const string ConfigName = "cluster";
    public const string UserSecretName = "image-registry-private-configuration-user";
    public const string AccessKeyKey = "REGISTRY_STORAGE_S3_ACCESSKEY";
    public const string SecretKeyKey = "REGISTRY_STORAGE_S3_SECRETKEY";
    public const string DefaultRouteName = "default-route";

    private static readonly (string Field, string Name)[] StorageTypes =
    [
        ("emptyDir", "EmptyDir"), ("s3", "S3"), ("pvc", "PVC"), ("gcs", "GCS"), ("swift", "Swift"), ("azure", "Azure"), ("ibmcos", "IBMCOS"), ("oss", "OSS"),
    ];

    private readonly LoopbackKubeApiServer _api;
    private readonly List<IDisposable> _subscriptions = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private RegistryDeployment? _deployment;
    private int _restarts;
    private int _syncs;

    private ImageRegistryOperator(LoopbackKubeApiServer api, RegistryRouteFront front)
    {
        _api = api;
        Front = front;
    }

    /// <summary>The default route's server (host <c>127.0.0.1:PORT</c>); it serves 503 until the registry runs.</summary>
    public RegistryRouteFront Front { get; }

    /// <summary>How many times docker-registry was (re)started.</summary>
    public int RestartCount => Volatile.Read(ref _restarts);

    public int SyncCount => Volatile.Read(ref _syncs);

    /// <summary>
    /// Reproduces the race the real operator has (a FIXME in its sync): on the next sync of a Managed config it writes
    /// back a stale copy without these top-level spec fields, losing what a client just set.
    /// </summary>
    public void LoseSpecFieldsOnNextSync(params string[] fields) => _loseOnNextSync = fields;

    private volatile string[]? _loseOnNextSync;

    /// <summary>The running registry, if any (tests read its settings, never its keys in messages).</summary>
    public RegistryDeployment? Deployment => _deployment;

    /// <summary>
    /// Seeds the operator's objects as on a fresh bare-metal cluster (config Removed, an emptyDir left from an earlier
    /// attempt, ClusterOperator reporting Removed) and starts watching.
    /// </summary>
    public static async Task<ImageRegistryOperator> StartAsync(LoopbackKubeApiServer api, SimulatedIngress ingress)
    {
        var front = await RegistryRouteFront.StartAsync(api, ingress);
        var registryOperator = new ImageRegistryOperator(api, front);
        var store = api.Store;
        store.Create(KubeResources.ImageRegistryConfigs, null, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = ConfigName },
            ["spec"] = new JsonObject
            {
                ["managementState"] = "Removed",
                ["replicas"] = 1,
                ["rolloutStrategy"] = "RollingUpdate",
                ["storage"] = new JsonObject { ["emptyDir"] = new JsonObject() },
            },
        });
        store.Create(KubeResources.ClusterOperators, null, new JsonObject { ["metadata"] = new JsonObject { ["name"] = "image-registry" } });
        await registryOperator.SyncAsync(CancellationToken.None);
        registryOperator._subscriptions.Add(api.OnChange(KubeResources.ImageRegistryConfigs, registryOperator.OnChangeAsync));
        registryOperator._subscriptions.Add(api.OnChange(KubeResources.Secrets, registryOperator.OnChangeAsync));
        registryOperator._subscriptions.Add(api.OnChange(KubeResources.ConfigMaps, registryOperator.OnChangeAsync));
        return registryOperator;
    }

    private Task OnChangeAsync(KubeObjectChange change, CancellationToken cancellationToken)
    {
        var relevant = change.Resource == KubeResources.ImageRegistryConfigs
            || (change.Resource == KubeResources.Secrets && change.Namespace == Namespace && change.Name == UserSecretName)
            || (change.Resource == KubeResources.ConfigMaps && change.Namespace == "openshift-config");
        return relevant ? SyncAsync(cancellationToken) : Task.CompletedTask;
    }

    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            Interlocked.Increment(ref _syncs);
            var config = _api.Store.Get(KubeResources.ImageRegistryConfigs, null, ConfigName);
            if (config is null)
            {
                return;
            }
            var spec = config["spec"] as JsonObject ?? new JsonObject();
            var generation = config["metadata"]?["generation"]?.GetValue<long>() ?? 1;
            var state = spec["managementState"]?.GetValue<string>() ?? "Managed";
            var replicas = spec["replicas"]?.GetValue<long>() ?? 1;
            switch (state)
            {
                case "Removed":
                    await StopRegistryAsync();
                    Report(generation, 0, null, available: ("True", "Removed", "The registry is removed"), progressing: ("False", "Removed", "All registry resources are removed"), storageExists: null);
                    SetDefaultRoute(false);
                    return;
                case "Unmanaged":
                    _api.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, ConfigName, s => s["observedGeneration"] = generation);
                    return;
            }
            if (_loseOnNextSync is { } lost)
            {
                _loseOnNextSync = null;
                _api.Store.Update(KubeResources.ImageRegistryConfigs, null, ConfigName, c =>
                {
                    foreach (var field in lost)
                    {
                        ((JsonObject)c["spec"]!).Remove(field);
                    }
                });
                return; // the write queues another sync, which renders the config as it now is
            }
            var (settings, error) = await RenderAsync(spec, replicas, cancellationToken);
            if (error is not null)
            {
                var ready = _deployment is null ? 0 : replicas;
                Report(generation, ready, null,
                    available: _deployment is null ? ("False", "DeploymentNotFound", "The deployment does not exist") : ("True", "Ready", "The registry is ready"),
                    progressing: ("True", "Error", $"Unable to apply resources: {error}"),
                    storageExists: ("False", "Error", error));
                return;
            }
            if (_deployment is null || _deployment.Settings != settings)
            {
                await StopRegistryAsync();
                _deployment = await RegistryDeployment.StartAsync(settings!, cancellationToken);
                Interlocked.Increment(ref _restarts);
                Front.SetUpstream(_deployment.BaseUri);
            }
            Report(generation, replicas, spec["storage"]!.DeepClone(),
                available: ("True", "Ready", "The registry is ready"),
                progressing: ("False", "Ready", "The registry is ready"),
                storageExists: ("True", "S3BucketExists", "S3 Bucket Exists"));
            SetDefaultRoute(spec["defaultRoute"]?.GetValue<bool>() == true);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A sync failure is the operator's condition, not a crash of the test's controller loop.
            var generation = _api.Store.Get(KubeResources.ImageRegistryConfigs, null, ConfigName)?["metadata"]?["generation"]?.GetValue<long>() ?? 0;
            Report(generation, 0, null, ("False", "Error", ex.Message), ("True", "Error", $"Unable to apply resources: {ex.Message}"), null);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The deployment's settings, or the operator's error message for what is wrong with the config.</summary>
    private async Task<(RegistryDeploymentSettings? Settings, string? Error)> RenderAsync(JsonObject spec, long replicas, CancellationToken cancellationToken)
    {
        var storage = spec["storage"] as JsonObject ?? new JsonObject();
        var configured = StorageTypes.Where(t => storage[t.Field] is JsonObject).Select(t => t.Name).ToList();
        if (configured.Count != 1)
        {
            return (null, configured.Count == 0
                ? "unable to sync storage configuration: storage backend not configured"
                : $"unable to sync storage configuration: exactly one storage type should be configured at the same time, got {configured.Count}: [{string.Join(" ", configured)}]");
        }
        if (storage["s3"] is not JsonObject s3)
        {
            return (null, $"unable to sync storage configuration: the simulated operator supports S3 storage only, not {configured[0]}");
        }
        var bucket = s3["bucket"]?.GetValue<string>();
        var region = s3["region"]?.GetValue<string>();
        var endpoint = s3["regionEndpoint"]?.GetValue<string>();
        if (string.IsNullOrEmpty(region))
        {
            return (null, "unable to sync storage configuration: MissingRegion: could not find region configuration");
        }
        if (string.IsNullOrEmpty(bucket) || string.IsNullOrEmpty(endpoint))
        {
            return (null, "unable to sync storage configuration: s3 bucket and regionEndpoint must be set when storage is Unmanaged");
        }

        var secret = _api.Store.Get(KubeResources.Secrets, Namespace, UserSecretName);
        if (secret is null)
        {
            return (null, $"unable to sync storage configuration: unable to get cluster minted credentials \"{Namespace}/installer-cloud-credentials\": secret \"installer-cloud-credentials\" not found");
        }
        string? Key(string name) => secret["data"]?[name]?.GetValue<string>() is { Length: > 0 } b64 ? Encoding.UTF8.GetString(Convert.FromBase64String(b64)) : null;
        var accessKey = Key(AccessKeyKey);
        var secretKey = Key(SecretKeyKey);
        if (accessKey is null || secretKey is null)
        {
            return (null, $"unable to sync storage configuration: secret \"{Namespace}/{UserSecretName}\" does not contain required key \"{(accessKey is null ? AccessKeyKey : SecretKeyKey)}\"");
        }

        var caBundle = "";
        if (s3["trustedCA"]?["name"]?.GetValue<string>() is { Length: > 0 } caName)
        {
            var configMap = _api.Store.Get(KubeResources.ConfigMaps, "openshift-config", caName);
            if (configMap is null)
            {
                return (null, $"unable to sync storage configuration: unable to get S3 CA bundle: failed to get trusted CA \"{caName}\": configmap \"{caName}\" not found");
            }
            caBundle = configMap["data"]?["ca-bundle.crt"]?.GetValue<string>() ?? "";
            if (caBundle.Length == 0)
            {
                return (null, $"unable to sync storage configuration: unable to get S3 CA bundle: config map openshift-config/{caName} has no ca-bundle.crt");
            }
        }
        var storageError = await CheckBucketAsync(bucket, region, endpoint, accessKey, secretKey, caBundle, cancellationToken);
        if (storageError is not null)
        {
            return (null, $"unable to sync storage configuration: {storageError}");
        }
        return (new RegistryDeploymentSettings(bucket, region, endpoint, accessKey, secretKey, caBundle,
            ForcePathStyle: s3["virtualHostedStyle"]?.GetValue<bool>() != true, Encrypt: s3["encrypt"]?.GetValue<bool>() == true, replicas), null);
    }

    /// <summary>HeadBucket through regionEndpoint trusting the system store plus the bundle (openshift/api #1180: trustedCA is used together with the system trust bundle).</summary>
    private static async Task<string?> CheckBucketAsync(string bucket, string region, string endpoint, string accessKey, string secretKey, string caBundle, CancellationToken cancellationToken)
    {
        var trusted = new X509Certificate2Collection();
        if (caBundle.Length > 0)
        {
            trusted.ImportFromPem(caBundle);
        }
        using var client = new AmazonS3Client(new BasicAWSCredentials(accessKey, secretKey), new AmazonS3Config
        {
            ServiceURL = endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = region,
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 0,
            Timeout = TimeSpan.FromSeconds(15),
            HttpClientFactory = new BundleOnlyHttpClientFactory(trusted),
        });
        try
        {
            await client.GetBucketLocationAsync(new GetBucketLocationRequest { BucketName = bucket }, cancellationToken);
            return null;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return $"NoSuchBucket: The specified bucket \"{bucket}\" does not exist";
        }
        catch (AmazonS3Exception ex)
        {
            return $"{ex.ErrorCode}: {ex.Message} (status code: {(int)ex.StatusCode})";
        }
        catch (Exception ex) when (ex is AmazonClientException or HttpRequestException or AuthenticationException or IOException)
        {
            return ex.ToString().Contains("RemoteCertificate", StringComparison.Ordinal) || ex.GetBaseException() is AuthenticationException
                ? $"RequestError: send request failed caused by: Get \"{endpoint}/{bucket}\": x509: certificate signed by unknown authority"
                : $"RequestError: send request failed caused by: {ex.GetBaseException().Message}";
        }
    }

    private void Report(long generation, long readyReplicas, JsonNode? appliedStorage,
        (string Status, string Reason, string Message) available, (string Status, string Reason, string Message) progressing,
        (string Status, string Reason, string Message)? storageExists)
    {
        var degraded = ("False", "AsExpected", "");
        var conditions = new List<(string Type, (string Status, string Reason, string Message) Value)>
        {
            ("Available", available), ("Progressing", progressing), ("Degraded", degraded),
        };
        if (storageExists is { } exists)
        {
            conditions.Add(("StorageExists", exists));
        }
        _api.Store.UpdateStatus(KubeResources.ImageRegistryConfigs, null, ConfigName, status =>
        {
            status["observedGeneration"] = generation;
            status["readyReplicas"] = readyReplicas;
            status["storageManaged"] = false;
            if (appliedStorage is not null)
            {
                status["storage"] = appliedStorage;
            }
            status["conditions"] = Merge(status["conditions"] as JsonArray, conditions);
        });
        _api.Store.UpdateStatus(KubeResources.ClusterOperators, null, "image-registry", status =>
        {
            status["conditions"] = Merge(status["conditions"] as JsonArray,
            [
                ("Available", (available.Status, available.Reason, available.Status == "True" ? $"Available: {available.Message}" : available.Message)),
                ("Progressing", (progressing.Status, progressing.Reason, $"Progressing: {progressing.Message}")),
                ("Degraded", degraded),
            ]);
            status["versions"] = new JsonArray(new JsonObject { ["name"] = "operator", ["version"] = "4.16.0-vddkbuild-simulated" });
        });
    }

    /// <summary>Conditions keep their lastTransitionTime unless their status changes (so an unchanged sync writes nothing).</summary>
    private static JsonArray Merge(JsonArray? existing, IEnumerable<(string Type, (string Status, string Reason, string Message) Value)> conditions)
    {
        var result = new JsonArray();
        foreach (var (type, value) in conditions)
        {
            var old = existing?.OfType<JsonObject>().FirstOrDefault(c => c["type"]?.GetValue<string>() == type);
            var since = old is not null && old["status"]?.GetValue<string>() == value.Status
                ? old["lastTransitionTime"]?.GetValue<string>()
                : DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            result.Add(new JsonObject
            {
                ["type"] = type,
                ["status"] = value.Status,
                ["reason"] = value.Reason,
                ["message"] = value.Message,
                ["lastTransitionTime"] = since,
            });
        }
        return result;
    }

    private void SetDefaultRoute(bool enabled)
    {
        var store = _api.Store;
        var existing = store.Get(KubeResources.Routes, Namespace, DefaultRouteName);
        if (!enabled)
        {
            if (existing is not null)
            {
                store.Delete(KubeResources.Routes, Namespace, DefaultRouteName);
            }
            return;
        }
        if (existing is null)
        {
            store.Create(KubeResources.Routes, Namespace, new JsonObject
            {
                ["metadata"] = new JsonObject { ["name"] = DefaultRouteName, ["namespace"] = Namespace },
                ["spec"] = new JsonObject
                {
                    ["host"] = Front.Host,
                    ["to"] = new JsonObject { ["kind"] = "Service", ["name"] = "image-registry" },
                    ["tls"] = new JsonObject { ["termination"] = "reencrypt" },
                },
            });
        }
        if (store.Get(KubeResources.ImageConfigs, null, "cluster") is not null)
        {
            store.UpdateStatus(KubeResources.ImageConfigs, null, "cluster", s =>
            {
                s["internalRegistryHostname"] = "image-registry.openshift-image-registry.svc:5000";
                s["externalRegistryHostnames"] = new JsonArray(JsonValue.Create(Front.Host));
            });
        }
    }

    private async Task StopRegistryAsync()
    {
        if (_deployment is not null)
        {
            Front.SetUpstream(null);
            await _deployment.DisposeAsync();
            _deployment = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var subscription in _subscriptions)
        {
            subscription.Dispose();
        }
        await _gate.WaitAsync();
        try
        {
            await StopRegistryAsync();
        }
        finally
        {
            _gate.Release();
        }
        await Front.DisposeAsync();
    }

    /// <summary>HTTP for the S3 check that trusts the system store plus the config map's bundle, like the registry pod.</summary>
    private sealed class BundleOnlyHttpClientFactory(X509Certificate2Collection trusted) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig)
        {
            var handler = new SocketsHttpHandler { UseProxy = false };
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (errors == SslPolicyErrors.None)
                {
                    return true;
                }
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || trusted.Count == 0)
                {
                    return errors == SslPolicyErrors.None && trusted.Count == 0;
                }
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                foreach (var ca in trusted)
                {
                    if (ca.SubjectName.RawData.AsSpan().SequenceEqual(ca.IssuerName.RawData))
                    {
                        chain.ChainPolicy.CustomTrustStore.Add(ca);
                    }
                    else
                    {
                        chain.ChainPolicy.ExtraStore.Add(ca);
                    }
                }
                using var presented = new X509Certificate2(certificate);
                return chain.Build(presented);
            };
            return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        }

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => true;

        public override string GetConfigUniqueString(IClientConfig clientConfig) => "simulated-image-registry-operator";
    }
}
