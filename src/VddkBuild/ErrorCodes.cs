namespace VddkBuild;

/// <summary>
/// Every stable code the project reports. Ranges: 1xxx archive, 2xxx layer/image/base, 3xxx registry,
/// 4xxx cluster, 5xxx properties and options. Warnings use the same ranges with a 9 in the hundreds digit (x9nn).
/// README.md lists them all; a code, once published, never changes meaning.
/// </summary>
public static class ErrorCodes
{
    // ---- 1xxx: the VDDK archive ----
    public const string ArchiveNotFound = "VDDK1001";
    public const string ArchiveFormatUnsupported = "VDDK1002";
    public const string ArchiveCorrupt = "VDDK1003";
    public const string NotAVddk = "VDDK1004";
    public const string VixDiskLibMissing = "VDDK1005";
    public const string VixDiskLibChainBroken = "VDDK1006";
    public const string EntryEscapesTree = "VDDK1007";
    public const string SymlinkEscapesTree = "VDDK1008";
    public const string HardlinkInvalid = "VDDK1009";
    public const string SpecialFileEntry = "VDDK1010";
    public const string VersionMismatch = "VDDK1011";
    public const string ArchiveTooLarge = "VDDK1012";
    public const string ExtractTargetNoSymlinks = "VDDK1013";
    public const string DuplicateEntry = "VDDK1014";
    public const string ExtractFailed = "VDDK1015";
    public const string WindowsVddk = "VDDK1016";
    public const string VddkArchitectureNotX86_64 = "VDDK1017";
    public const string ArchiveNotAFile = "VDDK1018";
    public const string ArchiveUnreadable = "VDDK1019";
    public const string ArchiveChanged = "VDDK1020";

    public const string MacMetadataDropped = "VDDK1901";          // warning
    public const string BuildNumberUnknown = "VDDK1902";          // warning
    public const string ExtractCleanupFailed = "VDDK1903";        // warning
    public const string Soname8LinkNotAdded = "VDDK1904";         // warning

    // ---- 2xxx: layer, image, base image, OCI archive ----
    public const string BaseReferenceInvalid = "VDDK2001";
    public const string BaseImageNotFound = "VDDK2002";
    public const string PlatformNotFound = "VDDK2003";
    public const string ImageLayoutInvalid = "VDDK2004";
    public const string MediaTypeUnsupported = "VDDK2005";
    public const string BlobDigestMismatch = "VDDK2006";
    public const string OutputWriteFailed = "VDDK2007";
    public const string PlatformInvalid = "VDDK2008";
    public const string BaseNeedsRegistry = "VDDK2009";
    public const string RegistriesConfInvalid = "VDDK2010";
    public const string BaseRegistryBlocked = "VDDK2011";

    public const string PlatformNotAmd64 = "VDDK2901";            // warning

    // ---- 3xxx: registry ----
    public const string ImageReferenceInvalid = "VDDK3001";
    public const string RegistryAuthFailed = "VDDK3002";
    public const string RegistryTlsFailed = "VDDK3003";
    public const string RegistryRetriesExhausted = "VDDK3004";
    public const string ManifestDigestMismatch = "VDDK3005";
    public const string PublicRegistryRefused = "VDDK3006";
    public const string TagInvalid = "VDDK3007";
    public const string CaBundleInvalid = "VDDK3008";
    public const string RegistryRequestFailed = "VDDK3009";
    public const string RegistryResponseInvalid = "VDDK3010";
    public const string RegistryDenied = "VDDK3011";
    public const string CredentialHelperFailed = "VDDK3012";
    public const string RegistryUnreachable = "VDDK3013";
    public const string ManifestFormatRefused = "VDDK3014";

    public const string InsecureRegistry = "VDDK3901";            // warning
    public const string PublicRegistryAllowed = "VDDK3902";       // warning
    public const string SecretEnvironmentLogged = "VDDK3903";     // warning

    // ---- 4xxx: cluster (OpenShift) ----
    public const string ClusterUnreachable = "VDDK4001";
    public const string ClusterForbidden = "VDDK4002";
    public const string ClusterRequestFailed = "VDDK4003";
    public const string ClusterConfigInvalid = "VDDK4004";
    public const string ClusterObjectNotFound = "VDDK4005";
    public const string ClusterConflict = "VDDK4006";
    public const string BucketClaimTimeout = "VDDK4007";
    public const string BucketClaimIncomplete = "VDDK4008";
    public const string S3EndpointNotFound = "VDDK4009";
    public const string BucketVerificationFailed = "VDDK4010";
    public const string IngressCertificateNotFound = "VDDK4011";
    public const string RegistryConfigNotApplied = "VDDK4012";
    public const string RegistryRolloutTimeout = "VDDK4013";
    public const string RegistryDegraded = "VDDK4014";
    public const string RegistryRouteNotFound = "VDDK4015";
    public const string ServiceAccountTokenFailed = "VDDK4016";
    public const string ForkliftProviderNotFound = "VDDK4017";
    public const string ClusterTimeout = "VDDK4018";
    public const string ClusterUnauthorized = "VDDK4019";
    public const string RegistryPushForbidden = "VDDK4020";
    public const string RegistryStorageInUse = "VDDK4021";
    public const string RegistryUnmanaged = "VDDK4022";
    public const string BucketClaimFailed = "VDDK4023";
    public const string RegistryPodStuck = "VDDK4024";
    public const string ClusterNotOpenShift = "VDDK4025";

    public const string BucketClaimWarningEvent = "VDDK4901";     // warning
    public const string BucketClaimSettingsDiffer = "VDDK4902";   // warning
    public const string RegistryConfigReapplied = "VDDK4903";     // warning
    public const string IngressCaWithoutRoot = "VDDK4904";        // warning
    public const string RegistryOperatorDegradedElsewhere = "VDDK4905"; // warning
    public const string ServiceAccountUnused = "VDDK4906";        // warning, raised by the targets (build/VddkBuild.Cluster.targets)
    public const string RegistryS3ThroughProxy = "VDDK4907";      // warning

    // ---- 5xxx: properties and options ----
    public const string PropertyMissing = "VDDK5001";
    public const string PropertyInvalid = "VDDK5002";
    public const string SecretProperty = "VDDK5003";              // raised by the targets (build/VddkBuild.Tasks.targets)
    public const string NativeWorkerKilled = "VDDK5004";

    // ---- 9xxx: unexpected ----
    public const string Unexpected = "VDDK9999";
}
