namespace VddkBuild.TestSupport.Archives;

/// <summary>How a fixture archive is packed.</summary>
public enum ArchiveCompression
{
    /// <summary>Plain tar.</summary>
    None,
    /// <summary>tar.gz, like the VMware download.</summary>
    Gzip,
    /// <summary>tar.xz (stored LZMA2 chunks: valid xz, no compression; see <see cref="XzStoreWriter"/>).</summary>
    Xz,
    /// <summary>tar.bz2.</summary>
    Bzip2,
    /// <summary>zip with Unix modes and symlinks in the external attributes (as Info-ZIP writes them).</summary>
    Zip,
}

public static class ArchiveCompressionExtensions
{
    public static string Extension(this ArchiveCompression compression) => compression switch
    {
        ArchiveCompression.None => ".tar",
        ArchiveCompression.Gzip => ".tar.gz",
        ArchiveCompression.Xz => ".tar.xz",
        ArchiveCompression.Bzip2 => ".tar.bz2",
        ArchiveCompression.Zip => ".zip",
        _ => throw new ArgumentOutOfRangeException(nameof(compression)),
    };
}
