namespace VddkBuild.Cluster;

/// <summary>
/// One field a step changes on one object: <c>configs.imageregistry.operator.openshift.io "cluster": spec.replicas: 1 -> 2</c>.
/// Values of secrets are recorded as <see cref="Redacted"/>, never in clear.
/// </summary>
public sealed record ClusterChange(ClusterObjectRef Object, string Field, string? OldValue, string? NewValue)
{
    public const string Redacted = "<redacted>";

    public override string ToString() => $"{Object}: {Field}: {OldValue ?? "<none>"} -> {NewValue ?? "<none>"}";
}

/// <summary>The changes of a run, in order; each is logged as it is recorded.</summary>
public sealed class ClusterPlan
{
    private readonly List<ClusterChange> _changes = [];
    private readonly Diagnostics.IBuildLog _log;
    private readonly bool _dryRun;

    internal ClusterPlan(Diagnostics.IBuildLog log, bool dryRun)
    {
        _log = log;
        _dryRun = dryRun;
    }

    public IReadOnlyList<ClusterChange> Changes
    {
        get { lock (_changes) return _changes.ToList(); }
    }

    public bool IsEmpty
    {
        get { lock (_changes) return _changes.Count == 0; }
    }

    internal void Record(IEnumerable<ClusterChange> changes)
    {
        foreach (var change in changes)
        {
            lock (_changes)
            {
                _changes.Add(change);
            }
            _log.Info(_dryRun ? $"Dry run, would change {change}" : $"Changed {change}");
        }
    }
}
