using System.IO.Compression;
using System.Runtime.CompilerServices;
using VddkBuild.Archive;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Layers;

/// <summary>
/// Turns VDDK entries into the image's layer in one pass: tar bytes are hashed (diffID), gzipped, hashed again
/// (digest) and written to a temporary file, which <see cref="CompleteAsync"/> renames to its content-addressed name.
/// Nothing is read back. The layer holds only <c>vmware-vix-disklib-distrib</c> and what is below it (no "/", "./" or
/// "opt/" entries: those directories belong to the base image, where /opt may be a symlink or a volume).
/// </summary>
/// <remarks>
/// Reproducible: entries in arrival order (the archive's), uid/gid 0 without names, mtimes clamped to
/// SOURCE_DATE_EPOCH, modes kept plus o+r (files) / o+rx (directories) so the arbitrary UID of an OpenShift init
/// container can copy the tree, and a gzip header without time or OS differences. The gzip is a series of
/// independent members of <see cref="LayerWriterOptions.GzipChunkSize"/> uncompressed bytes each, compressed on all
/// cores (<see cref="ParallelGzipWriter"/>); the bytes do not depend on the number of cores.
/// </remarks>
public sealed class LayerWriter : IVddkEntrySink, IAsyncDisposable
{
    private const string Root = ImageSettings.TreeRoot;

    private readonly string _directory;
    private readonly LayerWriterOptions _options;
    private readonly Dictionary<string, (VddkEntryKind Kind, int Mode)> _written = new(StringComparer.Ordinal);
    private readonly HashSet<string> _standIns = new(StringComparer.Ordinal); // synthesised directories, until replaced
    private string? _tempPath;
    private FileStream? _file;
    private HashingWriteStream? _compressedHash;
    private ParallelGzipWriter? _gzip;
    private HashingWriteStream? _tarHash;
    private DeterministicTarWriter? _tar;
    private LayerBlob? _result;
    private bool _disposed;
    private bool _faulted;
    private readonly bool _tarOnly;
    private Digest? _tarOnlyDiffId;

    /// <param name="outputDirectory">Where the layer file is written (created if missing); the temp file lives there too.</param>
    public LayerWriter(string outputDirectory, LayerWriterOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        _directory = Path.GetFullPath(outputDirectory);
        _options = options ?? new LayerWriterOptions();
    }

    private LayerWriter(LayerWriterOptions? options)
    {
        _directory = string.Empty;
        _options = options ?? new LayerWriterOptions();
        _tarOnly = true;
    }

    /// <summary>
    /// A writer that applies every rule of the layer but only hashes the tar: no gzip, no file. Its
    /// <see cref="CompleteDiffIdAsync"/> gives the diffID the real layer would have, without the cost of compressing.
    /// </summary>
    public static LayerWriter ForDiffIdOnly(LayerWriterOptions? options = null) => new(options);

    /// <summary>Number of entries written, including parent directories added because the input lacked them.</summary>
    public int EntryCount => _written.Count;

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask WriteEntryAsync(VddkEntry entry, Stream? content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_result is not null)
        {
            throw new InvalidOperationException("The layer is already complete.");
        }
        ThrowIfFaulted();
        var tar = EnsureOpen();
        var path = ValidatePath(entry.Path);
        // A directory listed after its children comes again with its real mode and time (see IVddkEntrySink): a
        // second header, which every tar reader and container runtime applies over the first.
        var replacesStandIn = entry.Kind == VddkEntryKind.Directory && !entry.Synthesized && _standIns.Remove(path);
        if (_written.ContainsKey(path) && !replacesStandIn)
        {
            throw new VddkException(ErrorCodes.DuplicateEntry,
                $"The VDDK archive contains '{path}' twice. Re-create the archive from an unpacked VDDK tree or download it again.", path);
        }
        if (path == Root && entry.Kind != VddkEntryKind.Directory)
        {
            throw new VddkException(ErrorCodes.NotAVddk,
                $"'{Root}' is a {entry.Kind.ToString().ToLowerInvariant()} in the archive, but it must be the VDDK's top folder. Use the VDDK tar.gz as downloaded from Broadcom.", path);
        }

        try
        {
            long mtime = Clamp(entry.ModificationTime);
            await WriteMissingParentsAsync(tar, path, mtime, cancellationToken).ConfigureAwait(false);
            int mode = entry.Mode & 0xFFF; // 07777: permission, setuid/setgid and sticky bits
            switch (entry.Kind)
            {
                case VddkEntryKind.Directory:
                    mode |= 0x5; // o+rx
                    await tar.WriteDirectoryAsync(path, mode, mtime, cancellationToken).ConfigureAwait(false);
                    break;
                case VddkEntryKind.File:
                    mode |= 0x4; // o+r
                    if (content is null)
                    {
                        throw new ArgumentException($"File entry '{path}' came without content.", nameof(content));
                    }
                    await tar.WriteFileAsync(path, mode, mtime, entry.Length, content,
                        (expected, got) => new VddkException(ErrorCodes.ArchiveCorrupt,
                            $"'{path}' should hold {expected} bytes but the archive ended after {got}. The VDDK archive is truncated or damaged; download it again.", path),
                        cancellationToken).ConfigureAwait(false);
                    break;
                case VddkEntryKind.Symlink:
                    if (string.IsNullOrEmpty(entry.LinkTarget))
                    {
                        throw new VddkException(ErrorCodes.ArchiveCorrupt, $"Symlink '{path}' has no target. The VDDK archive is damaged; download it again.", path);
                    }
                    mode = 0x1FF;
                    await tar.WriteSymlinkAsync(path, entry.LinkTarget, mtime, cancellationToken).ConfigureAwait(false);
                    break;
                case VddkEntryKind.Hardlink:
                    var target = entry.LinkTarget is null ? null : Normalise(entry.LinkTarget);
                    if (target is null || !_written.TryGetValue(target, out var linked) || linked.Kind is not (VddkEntryKind.File or VddkEntryKind.Hardlink))
                    {
                        throw new VddkException(ErrorCodes.HardlinkInvalid,
                            $"Hard link '{path}' points to '{entry.LinkTarget}', which is not a file earlier in the archive. Re-create the archive with GNU tar or bsdtar.", path);
                    }
                    // A hard link shares its target's inode, so it shows the target's (already widened) mode.
                    mode = linked.Mode;
                    await tar.WriteHardlinkAsync(path, target, mode, mtime, cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    throw new VddkException(ErrorCodes.SpecialFileEntry, $"'{path}' is not a file, directory or link and cannot go into the image.", path);
            }
            _written[path] = (entry.Kind, mode);
            if (entry.Synthesized && entry.Kind == VddkEntryKind.Directory)
            {
                _standIns.Add(path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The entry's content reports the archive's own failures as VddkExceptions: what is left is the layer
            // file (a full disk in VddkIntermediateDirectory, a quota, a file system gone read-only).
            _faulted = true;
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not write the layer file in '{_directory}': {VddkException.Reason(ex)}. Check free space and permissions.", _directory, ex);
        }
        catch
        {
            _faulted = true; // part of an entry may be in the tar: this layer must never be published
            throw;
        }
    }

    /// <summary>
    /// Ends the tar and the gzip member and publishes the file as <c>sha256-&lt;hex&gt;.tar.gz</c> in the output folder
    /// (an existing file of that name has the same content, so it is kept and the temp dropped).
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<LayerBlob> CompleteAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_tarOnly)
        {
            throw new InvalidOperationException("This writer only computes the diffID; call CompleteDiffIdAsync.");
        }
        if (_result is not null)
        {
            return _result;
        }
        ThrowIfFaulted();
        if (!_written.ContainsKey(Root))
        {
            throw new VddkException(ErrorCodes.NotAVddk,
                $"No '{Root}' folder was written to the layer. The input is not a VDDK archive; use the VMware-vix-disklib-*.tar.gz from Broadcom.", Root);
        }
        try
        {
            await _tar!.FinishAsync(cancellationToken).ConfigureAwait(false);
            await _gzip!.FinishAsync(cancellationToken).ConfigureAwait(false);
            await _file!.FlushAsync(cancellationToken).ConfigureAwait(false);
            var diffId = _tarHash!.CurrentDigest;
            var digest = _compressedHash!.CurrentDigest;
            long size = _compressedHash.BytesWritten;
            await CloseStreamsAsync().ConfigureAwait(false);

            var finalPath = Path.Combine(_directory, $"sha256-{digest.Hex}.tar.gz");
            Publish(_tempPath!, finalPath, size);
            _tempPath = null;
            _result = new LayerBlob(finalPath, new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = digest, Size = size }, diffId);
            return _result;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await AbandonAsync().ConfigureAwait(false);
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not write the layer file in '{_directory}': {VddkException.Reason(ex)}. Check free space and permissions.", _directory, ex);
        }
        catch
        {
            await AbandonAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Ends the tar of a <see cref="ForDiffIdOnly"/> writer and returns its sha256 (the layer's diffID).</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<Digest> CompleteDiffIdAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_tarOnly)
        {
            throw new InvalidOperationException("CompleteDiffIdAsync is for writers made by ForDiffIdOnly.");
        }
        if (_tarOnlyDiffId is { } done)
        {
            return done;
        }
        ThrowIfFaulted();
        if (!_written.ContainsKey(Root))
        {
            throw new VddkException(ErrorCodes.NotAVddk,
                $"No '{Root}' folder was written to the layer. The input is not a VDDK archive; use the VMware-vix-disklib-*.tar.gz from Broadcom.", Root);
        }
        await _tar!.FinishAsync(cancellationToken).ConfigureAwait(false);
        _tarOnlyDiffId = _tarHash!.CurrentDigest;
        await CloseStreamsAsync().ConfigureAwait(false);
        return _tarOnlyDiffId.Value;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await AbandonAsync().ConfigureAwait(false);
    }

    private void ThrowIfFaulted()
    {
        if (_faulted)
        {
            throw new InvalidOperationException("An earlier entry failed to write; this layer is incomplete and must be discarded.");
        }
    }

    /// <summary>
    /// Renames the checked bytes at <paramref name="tempPath"/> to their content-addressed name. A file already there
    /// is replaced, not trusted: the name says what it should hold, not what it holds (an interrupted copy, a file
    /// corrupted in place with its size kept, a folder). A parallel build publishing the same layer renames the same
    /// bytes; a build still reading the old file keeps reading it.
    /// </summary>
    internal static void Publish(string tempPath, string finalPath, long size)
    {
        if (Directory.Exists(finalPath))
        {
            Directory.Delete(finalPath, recursive: true); // not a layer file: nothing of ours can be in it
        }
        try
        {
            File.Move(tempPath, finalPath, overwrite: true);
        }
        catch (IOException) when (OperatingSystem.IsWindows() && File.Exists(finalPath) && new FileInfo(finalPath).Length == size)
        {
            // Windows: a build reading the same layer holds it open; it was published by a parallel build from the same bytes.
            File.Delete(tempPath);
        }
    }

    private DeterministicTarWriter EnsureOpen()
    {
        if (_tar is not null)
        {
            return _tar;
        }
        if (_tarOnly)
        {
            _tarHash = new HashingWriteStream(Stream.Null);
            _tar = new DeterministicTarWriter(_tarHash);
            return _tar;
        }
        try
        {
            Directory.CreateDirectory(_directory);
            _tempPath = Path.Combine(_directory, $".layer-{Guid.NewGuid():N}.tar.gz.tmp");
            _file = new FileStream(_tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _tempPath = null;
            throw new VddkException(ErrorCodes.OutputWriteFailed,
                $"Could not create the layer file in '{_directory}': {VddkException.Reason(ex)}. Check that the folder is writable.", _directory, ex);
        }
        _compressedHash = new HashingWriteStream(_file);
        _gzip = new ParallelGzipWriter(_compressedHash, _options.CompressionLevel, _options.GzipChunkSize, _options.CompressionWorkers, _options.ZlibLevel);
        _tarHash = new HashingWriteStream(_gzip);
        _tar = new DeterministicTarWriter(_tarHash);
        return _tar;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask WriteMissingParentsAsync(DeterministicTarWriter tar, string path, long mtime, CancellationToken ct)
    {
        // The reader delivers parents first; a missing one is added (0755, the child's clamped time) so the tree
        // stays complete whatever produced the entries.
        int slash = -1;
        while ((slash = path.IndexOf('/', slash + 1)) > 0)
        {
            var parent = path[..slash];
            if (_written.TryGetValue(parent, out var existing))
            {
                if (existing.Kind != VddkEntryKind.Directory)
                {
                    throw new VddkException(ErrorCodes.ArchiveCorrupt,
                        $"'{path}' lies below '{parent}', which is a {existing.Kind.ToString().ToLowerInvariant()}, not a folder. The archive is damaged.", path);
                }
                continue;
            }
            await tar.WriteDirectoryAsync(parent, 0x1ED /* 0755 */, mtime, ct).ConfigureAwait(false);
            _written[parent] = (VddkEntryKind.Directory, 0x1ED);
        }
    }

    private long Clamp(DateTimeOffset mtime)
    {
        var time = _options.SourceDateEpoch is { } epoch && epoch < mtime ? epoch : mtime;
        return time.ToUnixTimeSeconds();
    }

    private static string ValidatePath(string rawPath)
    {
        var path = Normalise(rawPath);
        if (path is null || (path != Root && !path.StartsWith(Root + "/", StringComparison.Ordinal)))
        {
            throw new VddkException(ErrorCodes.EntryEscapesTree,
                $"Entry '{rawPath}' is not inside '{Root}/'. Only the VDDK tree goes into the image; use the VDDK archive as downloaded.", rawPath);
        }
        return path;
    }

    /// <summary>Canonical relative form, or null when the path has empty, "." or ".." segments, a NUL, or is absolute.</summary>
    private static string? Normalise(string path)
    {
        var trimmed = path.EndsWith('/') ? path.TrimEnd('/') : path;
        if (trimmed.Length == 0 || trimmed.StartsWith('/') || trimmed.Contains('\0'))
        {
            return null;
        }
        foreach (var segment in trimmed.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                return null;
            }
        }
        return trimmed;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask CloseStreamsAsync()
    {
        if (_tarHash is not null) await _tarHash.DisposeAsync().ConfigureAwait(false);
        if (_gzip is not null) await _gzip.DisposeAsync().ConfigureAwait(false);
        if (_compressedHash is not null) await _compressedHash.DisposeAsync().ConfigureAwait(false);
        if (_file is not null) await _file.DisposeAsync().ConfigureAwait(false);
        (_tarHash, _gzip, _compressedHash, _file) = (null, null, null, null);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    private async ValueTask AbandonAsync()
    {
        try
        {
            await CloseStreamsAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // The temp file is deleted below either way.
        }
        if (_tempPath is not null)
        {
            try
            {
                File.Delete(_tempPath);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Best effort: a leftover .tmp is harmless and never taken for a layer.
            }
            _tempPath = null;
        }
    }
}
