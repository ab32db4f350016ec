using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Text.Json;
using System.Text.RegularExpressions;
using k8s.Autorest;
using VddkBuild.Threading;

namespace VddkBuild.Cluster;

/// <summary>
/// Turns API server failures into <see cref="VddkException"/>s that name the object, the verb and, for a 403, the
/// permission that is missing (taken from the authorizer's Status message).
/// </summary>
public static partial class ClusterErrors
{
    /// <summary>Runs one API call, translating its failure. 404 is translated too; callers that expect it use <see cref="GetOrNullAsync{T}"/>.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<T> CallAsync<T>(ClusterSession session, string verb, ClusterObjectRef target, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsApiFailure(ex, cancellationToken))
        {
            throw Translate(ex, verb, target, session.Server);
        }
    }

    /// <summary>A read where "not found" is an answer, not an error.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<T?> GetOrNullAsync<T>(ClusterSession session, ClusterObjectRef target, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return await call(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException ex) when (ex.Response?.StatusCode == HttpStatusCode.NotFound && !IsMissingResourceType(ex))
        {
            return null;
        }
        catch (Exception ex) when (IsApiFailure(ex, cancellationToken))
        {
            throw Translate(ex, "get", target, session.Server);
        }
    }

    /// <summary>
    /// A read where "not found" and "forbidden" are both answers: for sources of which any one is enough (the ingress
    /// CA), a 403 means "use the others", and only the caller knows whether what remains suffices.
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public static async Task<ClusterRead<T>> GetOrRefusedAsync<T>(ClusterSession session, ClusterObjectRef target, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return new ClusterRead<T>(target, await GetOrNullAsync(session, target, call, cancellationToken).ConfigureAwait(false), null);
        }
        catch (VddkException ex) when (ex.Code == ErrorCodes.ClusterForbidden && ex.InnerException is HttpOperationException http)
        {
            var (_, message) = ReadStatus(http.Response?.Content);
            var user = message is null ? null : ForbiddenMessage().Match(message) is { Success: true } match ? match.Groups["user"].Value : null;
            return new ClusterRead<T>(target, null, new RefusedRead(target, user, DescribeMissingPermission(message ?? "", "get", target)));
        }
    }

    public static VddkException Translate(Exception exception, string verb, ClusterObjectRef target, string server)
    {
        if (exception is VddkException vddk)
        {
            return vddk;
        }
        if (exception is k8s.Exceptions.KubeConfigException credentials)
        {
            // An exec plugin run again for a token that expired, or a token file re-read, failed during the build.
            // Not kept as the inner exception: its message and stack can quote the plugin's output.
            return new VddkException(ErrorCodes.ClusterConfigInvalid,
                $"The kubeconfig's credentials could not be renewed to {verb} {target}: {KubeconfigFiles.Describe(credentials)}. " +
                "Check that the credential plugin still works (log in again if it needs that), or use a kubeconfig with a token.", target.ToString());
        }
        if (exception is HttpOperationException http && http.Response is not null)
        {
            var (reason, message) = ReadStatus(http.Response.Content);
            var status = (int)http.Response.StatusCode;
            var detail = message ?? $"HTTP {status}";
            if (AdmissionPolicy(message) is { } policy && http.Response.StatusCode != HttpStatusCode.NotFound)
            {
                return new VddkException(http.Response.StatusCode == HttpStatusCode.Forbidden ? ErrorCodes.ClusterForbidden : ErrorCodes.ClusterRequestFailed,
                    $"The cluster's {policy} refused to {verb} {target} ({status} {reason}): {detail.TrimEnd('.')}. This is the cluster's admission policy, " +
                    "not a missing RBAC permission: granting a role does not help. On a managed cluster (OpenShift Dedicated, ROSA, ARO) the provider " +
                    "guards the objects it manages this way; ask its administrators or support to make the change, or leave this step out.",
                    target.ToString(), exception);
            }
            return http.Response.StatusCode switch
            {
                HttpStatusCode.Unauthorized => new VddkException(ErrorCodes.ClusterUnauthorized,
                    $"The API server {server} did not accept the credentials to {verb} {target} (401 Unauthorized). " +
                    "The kubeconfig token has probably expired: log in again ('oc login') or point VddkKubeconfig at valid credentials.", target.ToString(), exception),
                HttpStatusCode.Forbidden => new VddkException(ErrorCodes.ClusterForbidden,
                    $"The cluster refused to {verb} {target}: {DescribeMissingPermission(detail, verb, target)} " +
                    $"Ask a cluster administrator to grant it, or use a kubeconfig whose user has it. (API server said: {detail})", target.ToString(), exception),
                HttpStatusCode.NotFound when IsMissingResourceType(http) => MissingResourceType(exception, verb, target, server),
                HttpStatusCode.NotFound => new VddkException(ErrorCodes.ClusterObjectNotFound,
                    $"Cannot {verb} {target}: {detail}. Check the name and namespace.", target.ToString(), exception),
                HttpStatusCode.TooManyRequests => new VddkException(ErrorCodes.ClusterRequestFailed,
                    $"Cannot {verb} {target}: the API server {server} is overloaded and refused the request (429 {reason ?? "TooManyRequests"}: {detail.TrimEnd('.')})" +
                    (http.Response.Headers.ContainsKey("Retry-After")
                        ? $" in each of {RetryAfterHandler.MaxAttempts} attempts, waiting as long as it asked between them. "
                        : ". ") +
                    "Run the build again later; a cluster administrator can check the API server's priority and fairness (oc get flowschemas,prioritylevelconfigurations) " +
                    "for clients that keep it busy.", target.ToString(), exception),
                HttpStatusCode.Conflict => new VddkException(ErrorCodes.ClusterConflict,
                    $"Cannot {verb} {target}: {detail} ({reason ?? "Conflict"}). Another client keeps changing it; run the build again.", target.ToString(), exception),
                _ => new VddkException(ErrorCodes.ClusterRequestFailed,
                    $"Cannot {verb} {target}: the API server answered {status} {reason}: {detail.TrimEnd('.')}.", target.ToString(), exception),
            };
        }
        var tls = FindInner<AuthenticationException>(exception);
        if (tls is not null)
        {
            return new VddkException(ErrorCodes.ClusterUnreachable,
                $"TLS with the API server {server} failed while trying to {verb} {target}: {VddkException.Reason(tls)}. " +
                "The kubeconfig's certificate-authority data must contain the CA that signed the API server's certificate.", server, exception);
        }
        return new VddkException(ErrorCodes.ClusterUnreachable,
            $"The API server {server} could not be reached to {verb} {target}: {VddkException.Reason(exception)}. Check the network and the kubeconfig's server URL.", server, exception);
    }

    /// <summary>
    /// "User "u" cannot create resource "secrets" in API group "" in the namespace "n"" becomes a sentence naming the
    /// permission; an unfamiliar message falls back to the verb and resource of the request.
    /// </summary>
    public static string DescribeMissingPermission(string statusMessage, string verb, ClusterObjectRef target)
    {
        var escalation = RbacEscalation().Match(statusMessage);
        if (escalation.Success)
        {
            var held = statusMessage[(escalation.Index + escalation.Length)..].Trim().TrimStart(':').Trim();
            return $"user \"{escalation.Groups["user"].Value}\" may not grant the role this {target.Resource.Kind} refers to: binding a role needs 'bind' on that role, " +
                   $"or holding every permission it grants{(held.Length == 0 ? "" : $" (not held: {(held.Length > 300 ? held[..300] + "..." : held)})")}.";
        }
        var match = ForbiddenMessage().Match(statusMessage);
        if (match.Success)
        {
            var scope = match.Groups["ns"].Success ? $"in namespace \"{match.Groups["ns"].Value}\"" : "at cluster scope";
            return $"user \"{match.Groups["user"].Value}\" lacks the permission '{match.Groups["verb"].Value}' on resource \"{match.Groups["resource"].Value}\" " +
                   $"in API group \"{match.Groups["group"].Value}\" {scope}.";
        }
        var where = target.Namespace is null ? "at cluster scope" : $"in namespace \"{target.Namespace}\"";
        return $"the permission '{verb}' on resource \"{target.Resource.Plural}\" in API group \"{target.Resource.Group}\" {where} is missing.";
    }

    /// <summary>
    /// The admission webhook or ValidatingAdmissionPolicy that denied a write, as kube-apiserver names it in the Status
    /// message ("admission webhook "x" denied the request: ...", "ValidatingAdmissionPolicy 'x' with binding 'y' denied
    /// request: ..."); null for any other refusal, an RBAC one included.
    /// </summary>
    private static string? AdmissionPolicy(string? statusMessage)
    {
        if (statusMessage is null)
        {
            return null;
        }
        var match = AdmissionDenial().Match(statusMessage);
        return !match.Success ? null
            : match.Groups["webhook"].Success ? $"admission webhook \"{match.Groups["webhook"].Value}\""
            : $"ValidatingAdmissionPolicy '{match.Groups["policy"].Value}'";
    }

    /// <summary>
    /// The user RBAC's escalation check refused (a RoleBinding the user may create but whose role it may not grant:
    /// "user "u" (groups=[...]) is attempting to grant RBAC permissions not currently held"); null for any other failure.
    /// </summary>
    public static string? RbacEscalationUser(VddkException exception) =>
        exception.Code == ErrorCodes.ClusterForbidden && exception.InnerException is HttpOperationException http
        && ReadStatus(http.Response?.Content).Message is { } message && RbacEscalation().Match(message) is { Success: true } match
            ? match.Groups["user"].Value
            : null;

    public static bool IsConflict(Exception ex) => ex is HttpOperationException { Response.StatusCode: HttpStatusCode.Conflict } http
        && ReadStatus(http.Response.Content).Reason != "AlreadyExists";

    public static bool IsAlreadyExists(Exception ex) => ex is HttpOperationException { Response.StatusCode: HttpStatusCode.Conflict } http
        && ReadStatus(http.Response.Content).Reason == "AlreadyExists";

    private static bool IsApiFailure(Exception ex, CancellationToken cancellationToken) =>
        ex is HttpOperationException or HttpRequestException or k8s.Exceptions.KubeConfigException
        || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    /// <summary>
    /// A 404 whose Status names no object: the resource type itself is not served (CRD not installed). For an API group
    /// it does not serve at all, kube-apiserver answers the plain text "404 page not found", not a Status object.
    /// </summary>
    private static bool IsMissingResourceType(HttpOperationException ex)
    {
        var content = ex.Response?.Content;
        if (string.IsNullOrWhiteSpace(content) || !IsJsonObject(content))
        {
            return true;
        }
        var (_, message) = ReadStatus(content);
        return message is null || message.Contains("could not find the requested resource", StringComparison.Ordinal);
    }

    private static bool IsJsonObject(string content)
    {
        try
        {
            using var document = JsonDocument.Parse(content);
            return document.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// What a missing resource type means depends on whose it is: without route.openshift.io or config.openshift.io
    /// the cluster is not OpenShift at all (telling the user to install an operator would send them the wrong way);
    /// without Forklift's providers MTV is not installed.
    /// </summary>
    private static VddkException MissingResourceType(Exception exception, string verb, ClusterObjectRef target, string server)
    {
        var resource = target.Resource;
        var served = $"{resource.QualifiedName}/{resource.Version}";
        if (resource.Group is "route.openshift.io" or "config.openshift.io" or "imageregistry.operator.openshift.io" or "operator.openshift.io")
        {
            var capability = resource.Group == "imageregistry.operator.openshift.io"
                ? " (or OpenShift installed without the ImageRegistry capability: see 'oc get clusterversion version -o jsonpath={.status.capabilities.enabledCapabilities}')"
                : "";
            return new VddkException(ErrorCodes.ClusterNotOpenShift,
                $"The cluster at {server} does not serve {served}, needed to {verb} {target}: it is not OpenShift{capability}. " +
                "The cluster's image registry, its route and its operator exist only on OpenShift. Check that VddkKubeconfig/VddkKubeContext " +
                "(or KUBECONFIG, or the pod's service account) point at the OpenShift cluster; on another Kubernetes, push to a registry of your own " +
                "with VddkRegistry and set VddkUseCluster=false.", target.ToString(), exception);
        }
        if (resource == ClusterResource.ForkliftProviders)
        {
            return new VddkException(ErrorCodes.ForkliftProviderNotFound,
                $"The cluster at {server} does not serve {served}, needed to {verb} {target}: the Migration Toolkit for Virtualization (Forklift) is not installed. " +
                "Install its operator, or leave VddkForkliftProvider empty and set the provider's vddkInitImage yourself.", target.ToString(), exception);
        }
        if (resource == ClusterResource.ObjectBucketClaims)
        {
            return new VddkException(ErrorCodes.ClusterObjectNotFound,
                $"The cluster at {server} does not serve {served}, needed to {verb} {target}: OpenShift Data Foundation (its Multicloud Object Gateway, " +
                "NooBaa) is not installed, and nothing else provisions bucket claims. PrepareVddkRegistry puts the registry on such a bucket; a registry " +
                "that already has storage (managed OpenShift such as ROSA, ARO or OpenShift Dedicated keeps it on the cloud's storage; or a PVC) needs no " +
                "preparation: run PublishVddk alone (without VddkPrepareRegistry). Otherwise install ODF with the Multicloud Object Gateway, or give the " +
                "registry storage yourself.", target.ToString(), exception);
        }
        return new VddkException(ErrorCodes.ClusterObjectNotFound,
            $"The cluster does not serve {served}, needed to {verb} {target}. " +
            $"Install the operator that provides {resource.Kind} (see the documentation of this step).", target.ToString(), exception);
    }

    private static (string? Reason, string? Message) ReadStatus(string? content)
    {
        if (string.IsNullOrWhiteSpace(content))
        {
            return (null, null);
        }
        try
        {
            using var document = JsonDocument.Parse(content);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return (null, null);
            }
            string? Read(string name) => root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            return (Read("reason"), Read("message"));
        }
        catch (JsonException)
        {
            return (null, content.Length > 300 ? content[..300] : content);
        }
    }

    private static T? FindInner<T>(Exception? ex) where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is T found)
            {
                return found;
            }
        }
        return null;
    }

    [GeneratedRegex("user \"(?<user>[^\"]*)\" \\(groups=.*?\\) is attempting to grant RBAC permissions not currently held", RegexOptions.Singleline)]
    private static partial Regex RbacEscalation();

    [GeneratedRegex("admission webhook \"(?<webhook>[^\"]+)\" denied the request|ValidatingAdmissionPolicy '(?<policy>[^']+)' with binding '[^']*' denied request")]
    private static partial Regex AdmissionDenial();

    [GeneratedRegex("User \"(?<user>[^\"]*)\" cannot (?<verb>\\S+) resource \"(?<resource>[^\"]*)\" in API group \"(?<group>[^\"]*)\"(?: in the namespace \"(?<ns>[^\"]*)\")?")]
    private static partial Regex ForbiddenMessage();
}

/// <summary>The answer of <see cref="ClusterErrors.GetOrRefusedAsync{T}"/>: the object, null when absent, or the refusal.</summary>
public sealed record ClusterRead<T>(ClusterObjectRef Target, T? Value, RefusedRead? Refused) where T : class;

/// <summary>A read the API server refused (403): who was refused and the permission, as a sentence.</summary>
public sealed record RefusedRead(ClusterObjectRef Target, string? User, string Permission);
