using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>
/// The loopback API server's in-memory objects, keyed by resource, namespace and name, with the bookkeeping the real
/// server does: a monotonic <c>metadata.resourceVersion</c> checked on update (409 Conflict), <c>uid</c>,
/// <c>creationTimestamp</c>, <c>metadata.generation</c> bumped on spec changes only, status written only through the
/// status subresource, Secret <c>stringData</c> folded into <c>data</c>. Test code and simulated controllers call it
/// directly (their writes are not API requests and do not appear in the request log); every committed change is
/// reported through <see cref="Changed"/>. Every object handed out is a private copy.
/// </summary>
public sealed class KubeObjectStore
{
    private readonly object _gate = new();
    private readonly Dictionary<(KubeResource Resource, string Namespace, string Name), JsonObject> _objects = new();
    private readonly Dictionary<KubeResource, List<Func<JsonObject?, JsonObject, string?>>> _validators = new();
    private readonly TimeProvider _clock;
    private long _resourceVersion = 1000;

    public KubeObjectStore(TimeProvider? clock = null)
    {
        _clock = clock ?? TimeProvider.System;
    }

    /// <summary>Raised after each committed change, outside the store's lock.</summary>
    public event Action<KubeObjectChange>? Changed;

    /// <summary>When true (the default), creating a namespaced object needs its namespace to exist, as on a real cluster.</summary>
    public bool RequireNamespaces { get; set; } = true;

    public string CurrentResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _resourceVersion.ToString(CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>
    /// Adds an admission check (like a CRD's validation rules): return a message to refuse the write with 422 Invalid,
    /// or null to accept it. Receives the old object (null on create) and the object about to be stored.
    /// </summary>
    public void AddValidator(KubeResource resource, Func<JsonObject?, JsonObject, string?> validator)
    {
        lock (_gate)
        {
            if (!_validators.TryGetValue(resource, out var list))
            {
                _validators[resource] = list = [];
            }
            list.Add(validator);
        }
    }

    public JsonObject? Get(KubeResource resource, string? ns, string name)
    {
        lock (_gate)
        {
            return _objects.TryGetValue(Key(resource, ns, name), out var obj) ? Clone(obj) : null;
        }
    }

    public JsonObject GetRequired(KubeResource resource, string? ns, string name) =>
        Get(resource, ns, name) ?? throw new KubeStatusException(KubeStatus.NotFound(resource, name));

    /// <summary>Objects of a resource, in one namespace or (null) all of them, ordered by namespace and name.</summary>
    public IReadOnlyList<JsonObject> List(KubeResource resource, string? ns, Func<JsonObject, bool>? filter = null)
    {
        lock (_gate)
        {
            return _objects
                .Where(entry => entry.Key.Resource == resource && (ns is null || entry.Key.Namespace == ns))
                .OrderBy(entry => entry.Key.Namespace, StringComparer.Ordinal)
                .ThenBy(entry => entry.Key.Name, StringComparer.Ordinal)
                .Select(entry => entry.Value)
                .Where(obj => filter is null || filter(obj))
                .Select(Clone)
                .ToList();
        }
    }

    /// <summary>
    /// Creates an object. <paramref name="keepStatus"/> false drops any status, as the real server does for
    /// resources with a status subresource; test seeding passes true.
    /// </summary>
    public JsonObject Create(KubeResource resource, string? ns, JsonObject body, bool keepStatus = false)
    {
        var obj = Clone(body);
        var metadata = obj["metadata"] as JsonObject ?? new JsonObject();
        obj["metadata"] = metadata;
        ns = NormalizeNamespace(resource, ns, metadata);
        var name = metadata["name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name))
        {
            var prefix = metadata["generateName"]?.GetValue<string>();
            if (string.IsNullOrEmpty(prefix))
            {
                throw new KubeStatusException(KubeStatus.Invalid(resource, "", "metadata.name: Required value: name or generateName is required"));
            }
            name = prefix + Guid.NewGuid().ToString("N")[..5];
            metadata["name"] = name;
        }
        obj["apiVersion"] = resource.ApiVersion;
        obj["kind"] = resource.Kind;
        if (resource.HasStatus && !keepStatus)
        {
            obj.Remove("status");
        }
        if (resource == KubeResources.Secrets)
        {
            FoldStringData(obj);
        }
        if (resource == KubeResources.Namespaces && obj["status"] is null)
        {
            obj["status"] = new JsonObject { ["phase"] = "Active" };
        }

        KubeObjectChange change;
        lock (_gate)
        {
            var key = Key(resource, ns, name);
            if (_objects.ContainsKey(key))
            {
                throw new KubeStatusException(KubeStatus.AlreadyExists(resource, name));
            }
            if (ns is not null && RequireNamespaces && !_objects.ContainsKey(Key(KubeResources.Namespaces, null, ns)))
            {
                throw new KubeStatusException(KubeStatus.NotFound(KubeResources.Namespaces, ns));
            }
            Validate(resource, null, obj, name);
            metadata.Remove("resourceVersion");
            metadata["uid"] = Guid.NewGuid().ToString();
            metadata["creationTimestamp"] = Timestamp();
            if (resource.HasStatus)
            {
                metadata["generation"] = 1;
            }
            metadata["resourceVersion"] = NextResourceVersion();
            _objects[key] = Clone(obj);
            change = new KubeObjectChange(KubeChangeType.Added, resource, ns, name, null, Clone(obj));
        }
        Changed?.Invoke(change);
        return Clone(obj);
    }

    /// <summary>
    /// Replaces an object (HTTP PUT). A non-empty <c>metadata.resourceVersion</c> in <paramref name="body"/> must match
    /// the stored one, else 409 Conflict. <paramref name="statusOnly"/> writes only <c>status</c> (the status
    /// subresource); otherwise status is kept as stored for resources that have the subresource.
    /// </summary>
    public JsonObject Replace(KubeResource resource, string? ns, string name, JsonObject body, bool statusOnly = false) =>
        Write(resource, ns, name, statusOnly, current =>
        {
            var expected = body["metadata"]?["resourceVersion"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(expected) && expected != current["metadata"]!["resourceVersion"]!.GetValue<string>())
            {
                throw new KubeStatusException(KubeStatus.Conflict(resource, name));
            }
            var bodyName = body["metadata"]?["name"]?.GetValue<string>();
            if (bodyName is not null && bodyName != name)
            {
                throw new KubeStatusException(KubeStatus.BadRequest($"the name of the object ({bodyName}) does not match the name on the URL ({name})"));
            }
            return Clone(body);
        });

    /// <summary>
    /// Applies an RFC 7386 merge patch. A <c>metadata.resourceVersion</c> in the patch is a precondition (409 Conflict
    /// when it does not match), as on the real server.
    /// </summary>
    public JsonObject Patch(KubeResource resource, string? ns, string name, JsonObject patch, bool statusOnly = false) =>
        Write(resource, ns, name, statusOnly, current =>
        {
            var expected = patch["metadata"]?["resourceVersion"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(expected) && expected != current["metadata"]!["resourceVersion"]!.GetValue<string>())
            {
                throw new KubeStatusException(KubeStatus.Conflict(resource, name));
            }
            return (JsonObject)JsonMergePatch.Apply(current, patch)!;
        });

    /// <summary>Read-modify-write for test code and simulated controllers (no precondition).</summary>
    public JsonObject Update(KubeResource resource, string? ns, string name, Action<JsonObject> mutate) =>
        Write(resource, ns, name, statusOnly: false, current =>
        {
            mutate(current);
            return current;
        });

    /// <summary>Read-modify-write of <c>status</c> only, as a controller writes it through the status subresource.</summary>
    public JsonObject UpdateStatus(KubeResource resource, string? ns, string name, Action<JsonObject> mutateStatus) =>
        Write(resource, ns, name, statusOnly: true, current =>
        {
            var status = current["status"] as JsonObject ?? new JsonObject();
            current["status"] = status;
            mutateStatus(status);
            return current;
        });

    public JsonObject Delete(KubeResource resource, string? ns, string name)
    {
        var changes = new List<KubeObjectChange>();
        JsonObject removed;
        lock (_gate)
        {
            var key = Key(resource, ns, name);
            if (!_objects.Remove(key, out removed!))
            {
                throw new KubeStatusException(KubeStatus.NotFound(resource, name));
            }
            changes.Add(new KubeObjectChange(KubeChangeType.Deleted, resource, key.Namespace.Length == 0 ? null : key.Namespace, name, Clone(removed), null));
            if (resource == KubeResources.Namespaces)
            {
                // A namespace takes its objects with it (the real server finalizes asynchronously; tests need no delay).
                foreach (var inner in _objects.Keys.Where(k => k.Resource.Namespaced && k.Namespace == name).ToList())
                {
                    _objects.Remove(inner, out var innerObj);
                    changes.Add(new KubeObjectChange(KubeChangeType.Deleted, inner.Resource, inner.Namespace, inner.Name, Clone(innerObj!), null));
                }
            }
            NextResourceVersion();
        }
        foreach (var change in changes)
        {
            Changed?.Invoke(change);
        }
        return Clone(removed);
    }

    /// <summary>Records an Event about an object, as a controller's event recorder does.</summary>
    public JsonObject RecordEvent(KubeResource involvedResource, string ns, string involvedName, string type, string reason, string message, string component = "loopback-controller")
    {
        var involved = Get(involvedResource, ns, involvedName);
        var now = Timestamp();
        return Create(KubeResources.Events, ns, new JsonObject
        {
            ["metadata"] = new JsonObject { ["name"] = $"{involvedName}.{Guid.NewGuid():N}"[..Math.Min(63, involvedName.Length + 17)], ["namespace"] = ns },
            ["involvedObject"] = new JsonObject
            {
                ["kind"] = involvedResource.Kind,
                ["apiVersion"] = involvedResource.ApiVersion,
                ["namespace"] = ns,
                ["name"] = involvedName,
                ["uid"] = involved?["metadata"]?["uid"]?.GetValue<string>(),
            },
            ["type"] = type,
            ["reason"] = reason,
            ["message"] = message,
            ["count"] = 1,
            ["firstTimestamp"] = now,
            ["lastTimestamp"] = now,
            ["source"] = new JsonObject { ["component"] = component },
        });
    }

    private JsonObject Write(KubeResource resource, string? ns, string name, bool statusOnly, Func<JsonObject, JsonObject> produce)
    {
        if (statusOnly && !resource.HasStatus)
        {
            throw new KubeStatusException(KubeStatus.NotFound(resource, name));
        }
        KubeObjectChange? change;
        JsonObject result;
        lock (_gate)
        {
            var key = Key(resource, ns, name);
            if (!_objects.TryGetValue(key, out var stored))
            {
                throw new KubeStatusException(KubeStatus.NotFound(resource, name));
            }
            var candidate = produce(Clone(stored));
            var next = Merge(resource, stored, candidate, statusOnly);
            if (JsonNode.DeepEquals(next, stored))
            {
                // A no-op write changes nothing, not even resourceVersion, as on the real server.
                return Clone(stored);
            }
            Validate(resource, stored, next, name);
            if (resource.HasStatus && !statusOnly && !JsonNode.DeepEquals(WithoutMetadataAndStatus(stored), WithoutMetadataAndStatus(next)))
            {
                var generation = stored["metadata"]?["generation"]?.GetValue<long>() ?? 0;
                next["metadata"]!["generation"] = generation + 1;
            }
            next["metadata"]!["resourceVersion"] = NextResourceVersion();
            _objects[key] = Clone(next);
            result = Clone(next);
            change = new KubeObjectChange(KubeChangeType.Modified, resource, ns, name, Clone(stored), Clone(next));
        }
        Changed?.Invoke(change);
        return result;
    }

    /// <summary>Builds the object to store from the stored one and the caller's version, keeping what the caller may not change.</summary>
    private static JsonObject Merge(KubeResource resource, JsonObject stored, JsonObject candidate, bool statusOnly)
    {
        if (statusOnly)
        {
            var next = Clone(stored);
            next.Remove("status");
            if (candidate["status"] is JsonNode status)
            {
                next["status"] = status.DeepClone();
            }
            return next;
        }
        var result = Clone(candidate);
        result["apiVersion"] = resource.ApiVersion;
        result["kind"] = resource.Kind;
        var metadata = result["metadata"] as JsonObject ?? new JsonObject();
        result["metadata"] = metadata;
        var storedMetadata = (JsonObject)stored["metadata"]!;
        foreach (var immutable in new[] { "name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion" })
        {
            metadata.Remove(immutable);
            if (storedMetadata[immutable] is JsonNode value)
            {
                metadata[immutable] = value.DeepClone();
            }
        }
        if (resource.HasStatus)
        {
            result.Remove("status");
            if (stored["status"] is JsonNode status)
            {
                result["status"] = status.DeepClone();
            }
        }
        if (resource == KubeResources.Secrets)
        {
            FoldStringData(result);
        }
        return result;
    }

    private void Validate(KubeResource resource, JsonObject? old, JsonObject next, string name)
    {
        if (!_validators.TryGetValue(resource, out var validators))
        {
            return;
        }
        foreach (var validator in validators)
        {
            if (validator(old is null ? null : Clone(old), Clone(next)) is string message)
            {
                throw new KubeStatusException(KubeStatus.Invalid(resource, name, message));
            }
        }
    }

    private static JsonObject WithoutMetadataAndStatus(JsonObject obj)
    {
        var copy = Clone(obj);
        copy.Remove("metadata");
        copy.Remove("status");
        return copy;
    }

    private static void FoldStringData(JsonObject secret)
    {
        if (secret["stringData"] is not JsonObject stringData)
        {
            secret.Remove("stringData");
            return;
        }
        var data = secret["data"] as JsonObject ?? new JsonObject();
        secret["data"] = data;
        foreach (var (key, value) in stringData)
        {
            data.Remove(key);
            data[key] = Convert.ToBase64String(Encoding.UTF8.GetBytes(value?.GetValue<string>() ?? ""));
        }
        secret.Remove("stringData");
    }

    private static string? NormalizeNamespace(KubeResource resource, string? ns, JsonObject metadata)
    {
        if (!resource.Namespaced)
        {
            metadata.Remove("namespace");
            return null;
        }
        var bodyNamespace = metadata["namespace"]?.GetValue<string>();
        ns ??= bodyNamespace;
        if (string.IsNullOrEmpty(ns))
        {
            throw new KubeStatusException(KubeStatus.BadRequest("the namespace of the object is required"));
        }
        if (!string.IsNullOrEmpty(bodyNamespace) && bodyNamespace != ns)
        {
            throw new KubeStatusException(KubeStatus.BadRequest("the namespace of the provided object does not match the namespace sent on the request"));
        }
        metadata["namespace"] = ns;
        return ns;
    }

    private string NextResourceVersion() => (++_resourceVersion).ToString(CultureInfo.InvariantCulture);

    private string Timestamp() => _clock.GetUtcNow().UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static (KubeResource Resource, string Namespace, string Name) Key(KubeResource resource, string? ns, string name) =>
        (resource, resource.Namespaced ? ns ?? "" : "", name);

    /// <summary>
    /// A private copy, re-parsed so every number is JSON-backed: a value built in code as <c>int</c> then reads as
    /// <c>long</c> too (JsonValue of a CLR int refuses GetValue&lt;long&gt;).
    /// </summary>
    private static JsonObject Clone(JsonObject obj) => JsonNode.Parse(obj.ToJsonString())!.AsObject();
}
