using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes;

public enum KubeChangeType
{
    Added,
    Modified,
    Deleted,
}

/// <summary>
/// One committed change in the loopback server's store, as simulated controllers see it. <see cref="Old"/> is null
/// for additions, <see cref="New"/> null for deletions; both are private copies.
/// </summary>
public sealed record KubeObjectChange(KubeChangeType Type, KubeResource Resource, string? Namespace, string Name, JsonObject? Old, JsonObject? New)
{
    /// <summary>The object as it is after the change (or was, before a deletion).</summary>
    public JsonObject Current => New ?? Old!;
}
