using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Pull rights for the VDDK image: RoleBinding <c>allow-image-pullers</c> (ClusterRole system:image-puller) in the
/// repository's namespace, to group system:authenticated, or only to the service accounts of the given namespaces
/// (group <c>system:serviceaccounts:NS</c>), where the migration plans run. Subjects already there are kept.
/// </summary>
public static class ImagePullerBinding
{
    public const string BindingName = "allow-image-pullers";
    public const string ClusterRoleName = "system:image-puller";

    /// <param name="pullerNamespaces">VddkImagePullerNamespaces; empty: every authenticated user.</param>
    public static Task RunAsync(ClusterSession session, string ns, IReadOnlyCollection<string> pullerNamespaces, CancellationToken cancellationToken)
    {
        foreach (var name in pullerNamespaces)
        {
            if (!IsNamespaceName(name))
            {
                // The group of an impossible namespace exists for nobody: the grant would succeed and help no one.
                throw new VddkException(ErrorCodes.PropertyInvalid,
                    $"VddkImagePullerNamespaces names '{name}', which cannot be a namespace (a namespace name is at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit). " +
                    "List the namespaces where the migration plans run, separated by ';', for example 'openshift-mtv;vm-imports'.", name);
            }
        }
        var target = new ClusterObjectRef(ClusterResource.RoleBindings, ns, BindingName);
        var required = pullerNamespaces.Count == 0
            ? ["system:authenticated"]
            : pullerNamespaces.Select(n => $"system:serviceaccounts:{n}").Distinct(StringComparer.Ordinal).ToList();
        return ClusterRetry.OnConflictAsync(session, target, [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))] async Task<bool> (ct) =>
        {
            var current = await ClusterErrors.GetOrNullAsync(session, target,
                c => session.Api.RbacAuthorizationV1.ReadNamespacedRoleBindingAsync(BindingName, ns, cancellationToken: c), ct).ConfigureAwait(false);
            if (current is not null && (current.RoleRef.Kind != "ClusterRole" || current.RoleRef.Name != ClusterRoleName))
            {
                throw new VddkException(ErrorCodes.ClusterRequestFailed,
                    $"{target} exists but grants {current.RoleRef.Kind} \"{current.RoleRef.Name}\", not ClusterRole \"{ClusterRoleName}\" (a binding's role cannot change). " +
                    "Delete it, or set VddkGrantImagePullers=false and grant pull rights yourself.", target.ToString());
            }
            var subjects = current?.Subjects?.ToList() ?? [];
            var missing = required.Where(group => !subjects.Any(s => s.Kind == "Group" && s.Name == group)).ToList();
            if (missing.Count == 0)
            {
                session.Log.Detail($"{target} already grants {string.Join(", ", required)}.");
                return true;
            }
            var before = subjects.Select(Describe).ToList();
            subjects.AddRange(missing.Select(group => new Rbacv1Subject { Kind = "Group", ApiGroup = "rbac.authorization.k8s.io", Name = group }));
            var changes = new List<ClusterChange>();
            if (current is null)
            {
                changes.Add(new ClusterChange(target, "roleRef", null, $"ClusterRole/{ClusterRoleName}"));
            }
            changes.Add(new ClusterChange(target, "subjects", before.Count == 0 ? null : string.Join(", ", before), string.Join(", ", subjects.Select(Describe))));
            session.Changes.Record(changes);
            if (session.DryRun)
            {
                return true;
            }
            try
            {
                if (current is null)
                {
                    await ClusterErrors.CallAsync(session, "create", target, c => session.Api.RbacAuthorizationV1.CreateNamespacedRoleBindingAsync(new V1RoleBinding
                    {
                        Metadata = new V1ObjectMeta { Name = BindingName, NamespaceProperty = ns },
                        RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = ClusterRoleName },
                        Subjects = subjects,
                    }, ns, cancellationToken: c), ct).ConfigureAwait(false);
                }
                else
                {
                    var patch = new JsonObject
                    {
                        ["metadata"] = new JsonObject { ["resourceVersion"] = current.Metadata.ResourceVersion },
                        ["subjects"] = JsonNode.Parse(KubernetesJson.Serialize(subjects)),
                    };
                    await ClusterErrors.CallAsync(session, "patch", target, c => session.Api.RbacAuthorizationV1.PatchNamespacedRoleBindingAsync(
                        new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), BindingName, ns, cancellationToken: c), ct).ConfigureAwait(false);
                }
            }
            catch (VddkException ex) when (ClusterErrors.RbacEscalationUser(ex) is { } user)
            {
                throw CannotBind(target, ns, user, ex);
            }
            return true;
        }, cancellationToken);
    }

    /// <summary>
    /// RBAC lets a user bind a role only with 'bind' on it (or all of its permissions): a CI account with 'create' on
    /// rolebindings alone is refused. Names the one grant that suffices, for a user or a service account.
    /// </summary>
    private static VddkException CannotBind(ClusterObjectRef target, string ns, string user, VddkException refused)
    {
        const string ServiceAccountPrefix = "system:serviceaccount:";
        var subject = user.StartsWith(ServiceAccountPrefix, StringComparison.Ordinal) ? $"--serviceaccount={user[ServiceAccountPrefix.Length..]}" : $"--user={user}";
        return new VddkException(ErrorCodes.ClusterForbidden,
            $"The cluster refused to write {target}: user \"{user}\" may write role bindings there but not grant ClusterRole \"{ClusterRoleName}\", " +
            $"which needs 'bind' on clusterroles \"{ClusterRoleName}\" in namespace \"{ns}\" (or holding every permission that role grants). Grant it with: " +
            $"oc create clusterrole vddk-bind-image-puller --verb=bind --resource=clusterroles --resource-name={ClusterRoleName} && " +
            $"oc create rolebinding vddk-bind-image-puller -n {ns} --clusterrole=vddk-bind-image-puller {subject}; " +
            "or set VddkGrantImagePullers=false and let an administrator create the binding.", target.ToString(), refused);
    }

    /// <summary>A Kubernetes namespace name: an RFC 1123 label.</summary>
    internal static bool IsNamespaceName(string name) =>
        name.Length is > 0 and <= 63
        && name.AsSpan().IndexOfAnyExcept("abcdefghijklmnopqrstuvwxyz0123456789-") < 0
        && name[0] != '-' && name[^1] != '-';

    private static string Describe(Rbacv1Subject subject) =>
        subject.NamespaceProperty is null ? $"{subject.Kind}/{subject.Name}" : $"{subject.Kind}/{subject.NamespaceProperty}/{subject.Name}";
}
