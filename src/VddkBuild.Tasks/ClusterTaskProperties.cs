using System.Globalization;
using System.Text.RegularExpressions;
using VddkBuild.Cluster;
using VddkBuild.Diagnostics;

namespace VddkBuild.Tasks;

/// <summary>Parses the cluster tasks' properties and opens the cluster connection they share.</summary>
internal static partial class ClusterTaskProperties
{
    /// <summary>A duration from "300" (seconds), "90s", "5m", "1h" or "00:05:00"; empty gives <paramref name="fallback"/>.</summary>
    public static TimeSpan Duration(string? value, string propertyName, TimeSpan fallback)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return fallback;
        }
        var text = value.Trim();
        var match = DurationPattern().Match(text);
        if (match.Success)
        {
            var number = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            var result = match.Groups[2].Value.ToLowerInvariant() switch
            {
                "" or "s" => TimeSpan.FromSeconds(number),
                "ms" => TimeSpan.FromMilliseconds(number),
                "m" => TimeSpan.FromMinutes(number),
                _ => TimeSpan.FromHours(number),
            };
            if (result > TimeSpan.Zero)
            {
                return result;
            }
        }
        else if (TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) && span > TimeSpan.Zero)
        {
            return span;
        }
        throw new VddkException(ErrorCodes.PropertyInvalid,
            $"{propertyName} is '{value}', but it must be a positive duration: seconds (300), or with a unit (90s, 5m, 1h), or hh:mm:ss.", propertyName);
    }

    /// <summary>Null when unset: the cluster's replica count is kept.</summary>
    public static int? Replicas(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        return int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var replicas) && replicas is >= 1 and <= 100
            ? replicas
            : throw new VddkException(ErrorCodes.PropertyInvalid, $"VddkRegistryReplicas is '{value}', but it must be a whole number from 1 to 100.", "VddkRegistryReplicas");
    }

    public static Uri? S3Endpoint(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        var text = value.Trim();
        if (!text.Contains("://", StringComparison.Ordinal))
        {
            text = "https://" + text;
        }
        return Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "https" or "http" && uri.AbsolutePath == "/"
            ? uri
            : throw new VddkException(ErrorCodes.PropertyInvalid, $"VddkS3Endpoint is '{value}', but it must be an S3 URL such as https://s3-openshift-storage.apps.example.com (no path).", "VddkS3Endpoint");
    }

    public static string? RolloutStrategy(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        return value.Trim() switch
        {
            var s when s.Equals("Recreate", StringComparison.OrdinalIgnoreCase) => "Recreate",
            var s when s.Equals("RollingUpdate", StringComparison.OrdinalIgnoreCase) => "RollingUpdate",
            _ => throw new VddkException(ErrorCodes.PropertyInvalid, $"VddkRegistryRolloutStrategy is '{value}', but it must be Recreate or RollingUpdate.", "VddkRegistryRolloutStrategy"),
        };
    }

    /// <summary>Opens the cluster (VddkKubeconfig/VddkKubeContext, else the kubectl search order) for one task.</summary>
    public static (ClusterConnection Connection, ClusterSession Session) Open(string? kubeconfig, string? context, bool dryRun, string? pollInterval, IBuildLog log)
    {
        var connection = ClusterConnection.Open(NullIfBlank(kubeconfig) is { } path ? Path.GetFullPath(path) : null, NullIfBlank(context));
        var session = new ClusterSession(connection, log, dryRun)
        {
            PollInterval = Duration(pollInterval, "VddkClusterPollInterval", TimeSpan.FromSeconds(2)),
        };
        return (connection, session);
    }

    public static string? NullIfBlank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|)$", RegexOptions.IgnoreCase)]
    private static partial Regex DurationPattern();
}
