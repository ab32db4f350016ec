using System.Net;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Kubernetes;

/// <summary>Status bodies as the Kubernetes API server returns them for failures (and successful deletes).</summary>
public static class KubeStatus
{
    public static JsonObject Failure(HttpStatusCode code, string reason, string message, KubeResource? resource = null, string? name = null)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = (int)code,
        };
        if (resource is not null)
        {
            var details = new JsonObject();
            if (name is not null)
            {
                details["name"] = name;
            }
            if (resource.Group.Length > 0)
            {
                details["group"] = resource.Group;
            }
            details["kind"] = resource.Plural;
            status["details"] = details;
        }
        return status;
    }

    public static JsonObject NotFound(KubeResource resource, string name) =>
        Failure(HttpStatusCode.NotFound, "NotFound", $"{resource.QualifiedName} \"{name}\" not found", resource, name);

    public static JsonObject AlreadyExists(KubeResource resource, string name) =>
        Failure(HttpStatusCode.Conflict, "AlreadyExists", $"{resource.QualifiedName} \"{name}\" already exists", resource, name);

    public static JsonObject Conflict(KubeResource resource, string name) =>
        Failure(HttpStatusCode.Conflict, "Conflict",
            $"Operation cannot be fulfilled on {resource.QualifiedName} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            resource, name);

    public static JsonObject Invalid(KubeResource resource, string name, string message) =>
        Failure(HttpStatusCode.UnprocessableEntity, "Invalid",
            $"{(resource.Group.Length == 0 ? resource.Kind : $"{resource.Kind}.{resource.Group}")} \"{name}\" is invalid: {message}", resource, name);

    public static JsonObject BadRequest(string message) => Failure(HttpStatusCode.BadRequest, "BadRequest", message);

    public static JsonObject Unauthorized() => Failure(HttpStatusCode.Unauthorized, "Unauthorized", "Unauthorized");

    /// <summary>The message format of the real authorizer, which callers parse to name the missing permission.</summary>
    public static JsonObject Forbidden(string user, string verb, KubeResource resource, string? subresource, string? ns, string? name)
    {
        var target = name is null ? resource.QualifiedName : $"{resource.QualifiedName} \"{name}\"";
        var resourceName = subresource is null ? resource.Plural : $"{resource.Plural}/{subresource}";
        var scope = ns is null ? "at the cluster scope" : $"in the namespace \"{ns}\"";
        var message = $"{target} is forbidden: User \"{user}\" cannot {verb} resource \"{resourceName}\" in API group \"{resource.Group}\" {scope}";
        return Failure(HttpStatusCode.Forbidden, "Forbidden", message, resource, name);
    }

    public static JsonObject Success(KubeResource resource, string name, string? uid)
    {
        var details = new JsonObject { ["name"] = name, ["kind"] = resource.Plural };
        if (resource.Group.Length > 0)
        {
            details["group"] = resource.Group;
        }
        if (uid is not null)
        {
            details["uid"] = uid;
        }
        return new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Success",
            ["details"] = details,
        };
    }
}
