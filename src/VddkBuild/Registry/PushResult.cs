using VddkBuild.Oci;

namespace VddkBuild.Registry;

/// <summary>What happened to one blob during a push.</summary>
public enum BlobOutcome
{
    /// <summary>The target repository already had it (HEAD 200).</summary>
    Skipped,

    /// <summary>Linked from the base's repository on the same registry, no bytes sent.</summary>
    Mounted,

    /// <summary>Bytes sent.</summary>
    Uploaded,
}

public sealed record BlobPushResult(Descriptor Blob, BlobOutcome Outcome, long BytesSent);

/// <summary>The outcome of <see cref="ImagePusher.PushAsync"/>.</summary>
public sealed record PushResult(
    ImageReference Target,
    Digest Digest,
    IReadOnlyList<string> Tags,
    IReadOnlyList<BlobPushResult> Blobs,
    long RequestCount,
    TimeSpan Elapsed)
{
    /// <summary>The media type of the manifest the registry took (OCI, or Docker schema 2 after a fallback).</summary>
    public string ManifestMediaType { get; init; } = MediaTypes.OciManifest;

    /// <summary><c>registry/repository@sha256:...</c>.</summary>
    public ImageReference PinnedReference => Target.RepositoryOnly.WithDigest(Digest);

    public int Uploaded => Blobs.Count(b => b.Outcome == BlobOutcome.Uploaded);

    public int Mounted => Blobs.Count(b => b.Outcome == BlobOutcome.Mounted);

    public int Skipped => Blobs.Count(b => b.Outcome == BlobOutcome.Skipped);

    public long BytesUploaded => Blobs.Sum(b => b.BytesSent);

    public long BytesMounted => Blobs.Where(b => b.Outcome == BlobOutcome.Mounted).Sum(b => b.Blob.Size);

    public long BytesSkipped => Blobs.Where(b => b.Outcome == BlobOutcome.Skipped).Sum(b => b.Blob.Size);
}
