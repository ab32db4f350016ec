using System.IO.Compression;

namespace VddkBuild.Layers;

/// <summary>How <see cref="LayerWriter"/> makes the layer.</summary>
public sealed record LayerWriterOptions
{
    /// <summary>
    /// SOURCE_DATE_EPOCH: when set, every entry's mtime is the earlier of its own and this time, so a rebuild of
    /// an archive with newer files still gives the same layer.
    /// </summary>
    public DateTimeOffset? SourceDateEpoch { get; init; }

    /// <summary>
    /// Deflate level. The layer digest is stable for a given level and runtime; changing it changes the digest
    /// (the diffID stays the same). Optimal (zlib level 6) is about 2x slower than Fastest and ~20% smaller.
    /// </summary>
    public CompressionLevel CompressionLevel { get; init; } = CompressionLevel.Optimal;

    /// <summary>
    /// Uncompressed bytes per gzip member. Part of the layer's identity: a different size gives a different digest
    /// (same diffID). Fixed by default so that every machine makes the same bytes.
    /// </summary>
    public int GzipChunkSize { get; init; } = ParallelGzipWriter.DefaultChunkSize;

    /// <summary>
    /// An exact zlib level (1 fastest .. 9 smallest) instead of <see cref="CompressionLevel"/>; null uses
    /// <see cref="CompressionLevel"/>. Part of the layer's identity like the chunk size.
    /// </summary>
    public int? ZlibLevel { get; init; }

    /// <summary>
    /// Use the archive file itself as the layer when its bytes already are a correct layer
    /// (<see cref="Archive.VerbatimLayerCheck"/>), instead of writing a normalised one. Part of the layer's identity.
    /// </summary>
    public bool UseArchiveAsLayer { get; init; } = true;

    /// <summary>Members compressed at once; 0 means one per core (at most 8). Never changes the bytes, only the time.</summary>
    public int CompressionWorkers { get; init; }
}
