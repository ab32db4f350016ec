using System.Security.Cryptography.X509Certificates;

namespace VddkBuild.Cluster;

/// <summary>The CA bundle that verifies the cluster's ingress (routes: S3, the registry), and where it was published.</summary>
public sealed record IngressCa(string Pem, X509Certificate2Collection Certificates, string Source, string ConfigMapName);
