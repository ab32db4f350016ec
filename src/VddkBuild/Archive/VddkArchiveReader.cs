using System.IO.Compression;
using System.Runtime.CompilerServices;
using SharpCompress.Compressors.BZip2;
using VddkBuild.Diagnostics;
using VddkBuild.IO;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// Reads a VDDK archive once, streaming: every entry is validated and handed to a sink in archive order (parents
/// first), then the tree-wide checks run (libvixDiskLib chains, version). The format is recognised by its first
/// bytes: tar, gzip (also multi-member), xz, bzip2 or zip.
/// </summary>
public sealed class VddkArchiveReader
{
    private readonly string _archivePath;
    private readonly VddkArchiveReadOptions _options;
    private readonly IBuildLog _log;

    public VddkArchiveReader(string archivePath, VddkArchiveReadOptions options, IBuildLog log)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        _archivePath = archivePath;
        _options = options;
        _log = log;
    }

    /// <summary>
    /// Delivers every entry to <paramref name="sink"/> and returns what was found once all checks passed. Throws
    /// <see cref="VddkException"/> (VDDK1001-1014) for anything wrong with the archive; the sink may then have seen
    /// some entries and must discard them.
    /// </summary>
    /// <param name="verbatim">When given, also decides in the same reading whether the archive file can be the image
    /// layer as it is (see <see cref="VerbatimLayerCheck"/>).</param>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    public async Task<VddkArchiveContents> ReadAsync(IVddkEntrySink sink, CancellationToken cancellationToken, VerbatimLayerCheck? verbatim = null)
    {
        ArgumentNullException.ThrowIfNull(sink);
        var nameInfo = VddkArchiveName.TryParse(_archivePath);
        var state = new TreeBuilder(_archivePath);
        var macAppleDouble = 0;
        var macOsxFolder = 0;
        var macAttributes = 0;
        var entryCount = 0;
        long totalBytes = 0;
        var elfHeads = new Dictionary<string, byte[]>(StringComparer.Ordinal);

        await using (var source = await OpenAsync(verbatim, cancellationToken).ConfigureAwait(false))
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                ArchiveSourceEntry? raw;
                try
                {
                    raw = await source.NextAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (UnsupportedTarEntryException ex)
                {
                    throw new VddkException(ErrorCodes.SpecialFileEntry,
                        $"The archive entry '{EntryPaths.Printable(ex.EntryName)}' in '{_archivePath}' is a {ex.Description}, which cannot be put in an image faithfully. Repack the VDDK with plain tar (no --sparse, no multi-volume) or use the original archive.",
                        ex.EntryName, ex);
                }
                catch (UnsupportedZipEntryException ex)
                {
                    throw new VddkException(ErrorCodes.ArchiveFormatUnsupported,
                        $"The zip '{_archivePath}' cannot be read: its entry '{EntryPaths.Printable(ex.EntryName)}' {ex.Problem}, and only stored or deflate entries without a password can be read. The file is not damaged; repack the VDDK as a zip with deflate and no password (on Linux: zip -r -y, without -Z or -P/-e), or use the VMware .tar.gz as downloaded.",
                        ex.EntryName, ex);
                }
                catch (UnusableEntryNameException ex)
                {
                    throw new VddkException(ErrorCodes.EntryEscapesTree, $"The archive entry '{ex.EscapedName}' in '{_archivePath}' {ex.Problem}.", ex.EscapedName, ex);
                }
                catch (Exception ex) when (ex is not OperationCanceledException and not VddkException && ArchiveFailures.IsDamage(ex))
                {
                    var where = state.LastPath is null ? "reading the first entry" : $"reading the entry after '{state.LastPath}'";
                    throw ArchiveFailures.Corrupt(_archivePath, $"{where} failed: {ex.Message}", ex);
                }
                if (raw is null)
                {
                    break;
                }

                if (++entryCount > _options.MaxEntryCount)
                {
                    throw TooLarge($"it has more than {_options.MaxEntryCount} entries", nameof(VddkArchiveReadOptions.MaxEntryCount));
                }
                if (raw.Length > _options.MaxEntryBytes)
                {
                    throw TooLarge($"the entry '{EntryPaths.Printable(raw.Name)}' is {raw.Length} bytes, more than the limit of {_options.MaxEntryBytes} bytes for one entry", nameof(VddkArchiveReadOptions.MaxEntryBytes));
                }
                totalBytes += raw.Length;
                if (totalBytes > _options.MaxTotalBytes)
                {
                    throw TooLarge($"its entries add up to more than {_options.MaxTotalBytes} uncompressed bytes (reached at '{EntryPaths.Printable(raw.Name)}')", nameof(VddkArchiveReadOptions.MaxTotalBytes));
                }
                macAttributes += raw.MacAttributeRecords;
                if (verbatim is { Active: true })
                {
                    CompareReadings(verbatim, raw);
                }

                var path = EntryPaths.Normalize(_archivePath, raw.Name);
                if (path.Length == 0)
                {
                    if (raw.Type == SourceEntryType.Directory)
                    {
                        verbatim?.Refuse("the archive lists its root './', which a runtime would apply to the image's '/'");
                        continue; // "./": the archive's root, not part of the tree
                    }
                    throw new VddkException(ErrorCodes.EntryEscapesTree, $"The archive '{_archivePath}' has a {raw.TypeDescription} entry named '{raw.Name}', which names the archive root itself. Repack the VDDK with everything under vmware-vix-disklib-distrib/.", raw.Name);
                }
                if (MacMetadata.IsMacOsxFolder(path))
                {
                    macOsxFolder++;
                    verbatim?.Refuse("the archive carries macOS metadata ('__MACOSX/'), which the layer leaves out");
                    continue;
                }
                if (MacMetadata.IsAppleDouble(path))
                {
                    macAppleDouble++;
                    verbatim?.Refuse("the archive carries macOS metadata ('._*' files), which the layer leaves out");
                    continue;
                }

                var entry = state.Accept(path, raw);
                var parents = state.TakeSynthesizedParents();
                if (verbatim is { Active: true })
                {
                    CheckVerbatimEntry(verbatim, state, raw, entry, parents.Count);
                }
                foreach (var parent in parents)
                {
                    await sink.WriteEntryAsync(parent, null, cancellationToken).ConfigureAwait(false);
                }
                if (entry.Kind == VddkEntryKind.File)
                {
                    var content = new EntryContentStream(raw.Content ?? Stream.Null, entry.Length, _archivePath, path, VddkTreeChecks.LibraryHeadBytes);
                    await sink.WriteEntryAsync(entry, content, cancellationToken).ConfigureAwait(false);
                    await content.DrainAsync(cancellationToken).ConfigureAwait(false);
                    // The library's ELF header tells the architecture, and the library may be any file (reached
                    // through a symlinked folder, or the target of a hard link): every ELF file's 20 bytes are kept.
                    // Only ELF files': the check reads nothing else, and an archive of 80,000 small files would
                    // otherwise hold 80,000 heads.
                    if (content.Head is [0x7F, (byte)'E', (byte)'L', (byte)'F', ..])
                    {
                        elfHeads[path] = content.Head.ToArray();
                    }
                }
                else
                {
                    await sink.WriteEntryAsync(entry, null, cancellationToken).ConfigureAwait(false);
                }
            }

            try
            {
                await source.CompleteAsync(cancellationToken).ConfigureAwait(false);
                if (verbatim is not null)
                {
                    if (verbatim.TakeHeader() is not null)
                    {
                        verbatim.Refuse("two readings of the tar disagree about the number of entries");
                    }
                    await verbatim.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException and not VddkException && ArchiveFailures.IsDamage(ex))
            {
                throw ArchiveFailures.Corrupt(_archivePath, $"the data after the last entry is damaged (a bad gzip/xz/bzip2 trailer or checksum): {ex.Message}", ex);
            }
        }

        var checks = new VddkTreeChecks(_archivePath, state.Entries, elfHeads);
        checks.CheckSymlinksStayInside();
        var version = checks.CheckVixDiskLib(nameInfo);
        var delivered = state.Delivered;
        if (_options.AddSoname8Link && checks.Soname8Link(version, _log) is { } link)
        {
            if (verbatim is not null)
            {
                // The archive's own bytes lack the link: never the layer as they are. (That reading's sink takes no
                // entries; the normal path reads again and gets the link.)
                verbatim.Refuse($"VddkAddSoname8Link adds {EntryPaths.Display(link.Path)}, which the archive does not have");
            }
            else
            {
                await sink.WriteEntryAsync(link, null, cancellationToken).ConfigureAwait(false);
            }
            delivered = [.. delivered, link];
        }

        var dropped = macAppleDouble + macOsxFolder + macAttributes;
        if (macAppleDouble + macOsxFolder > 0)
        {
            _log.Warn(ErrorCodes.MacMetadataDropped,
                $"The VDDK archive '{_archivePath}' was made on macOS: dropped {macAppleDouble} AppleDouble '._*' entries, {macOsxFolder} '__MACOSX/' entries and {macAttributes} extended-attribute records (LIBARCHIVE.*/SCHILY.xattr.*). They are Finder metadata; the image does not need them.");
        }
        else if (macAttributes > 0)
        {
            // Without AppleDouble files, most likely tar --xattrs/--selinux/--acls on Linux (SELinux labels, ACLs).
            _log.Warn(ErrorCodes.MacMetadataDropped,
                $"The VDDK archive '{_archivePath}' carries {macAttributes} extended-attribute record{(macAttributes == 1 ? "" : "s")} (LIBARCHIVE.*/SCHILY.*: SELinux labels, ACLs or file flags that tar --xattrs, --selinux or --acls stores, or a Mac's attributes); they were dropped: the image does not need them, and an SELinux label or capability of the packing machine must not reach it.");
        }
        if (nameInfo?.BuildNumber is null)
        {
            _log.Warn(ErrorCodes.BuildNumberUnknown,
                $"The VDDK archive's file name '{Path.GetFileName(_archivePath)}' does not carry the build number (VMware names it like '{new VddkArchiveName(version, "<build>").ToFileName()}'). The version {version} was read from lib64/libvixDiskLib.so.{version}; the build number stays unknown, so it cannot appear in the image's labels.");
        }
        _log.Detail($"Read VDDK {version} from '{_archivePath}': {state.Entries.Count} entries, {totalBytes} bytes of file content.");

        return new VddkArchiveContents(version, nameInfo?.BuildNumber, delivered, state.NewestModificationTime, dropped);
    }

    /// <summary>The header walk and System.Formats.Tar must agree on every entry, or another parser might disagree too.</summary>
    private static void CompareReadings(VerbatimLayerCheck verbatim, ArchiveSourceEntry raw)
    {
        var header = verbatim.TakeHeader();
        var type = raw.Type switch
        {
            SourceEntryType.File => '0',
            SourceEntryType.Directory => '5',
            SourceEntryType.Symlink => '2',
            SourceEntryType.Hardlink => '1',
            _ => '?',
        };
        if (header is null || header.Name != raw.Name || header.Type != type || header.Size != raw.Length
            || (type is '1' or '2' && header.LinkName != raw.LinkName))
        {
            verbatim.Refuse($"two readings of the tar disagree about the entry '{EntryPaths.Printable(raw.Name)}'");
        }
    }

    /// <summary>The entry must appear in the layer exactly as the archive has it (see <see cref="VerbatimLayerCheck"/>).</summary>
    private static void CheckVerbatimEntry(VerbatimLayerCheck verbatim, TreeBuilder state, ArchiveSourceEntry raw, VddkEntry entry, int synthesizedParents)
    {
        var printable = EntryPaths.Printable(raw.Name);
        if (synthesizedParents > 0)
        {
            verbatim.Refuse($"the archive does not list the parent directory of '{printable}'");
        }
        else if (raw.Name != entry.Path && !(entry.Kind == VddkEntryKind.Directory && raw.Name == entry.Path + "/"))
        {
            verbatim.Refuse($"the entry name '{printable}' is not in canonical form ('{entry.Path}')");
        }
        else if ((entry.Mode & 0xE00) != 0)
        {
            verbatim.Refuse($"'{printable}' has a setuid, setgid or sticky bit");
        }
        else if (entry.Kind == VddkEntryKind.File && (entry.Mode & 0x4) == 0)
        {
            verbatim.Refuse($"'{printable}' is not readable by others (the layer adds o+r)");
        }
        else if (entry.Kind == VddkEntryKind.Directory && (entry.Mode & 0x5) != 0x5)
        {
            verbatim.Refuse($"the directory '{printable}' is not readable and searchable by others (the layer adds o+rx)");
        }
        else if (entry.Kind == VddkEntryKind.Hardlink
            && (raw.LinkName != entry.LinkTarget || !state.Entries.TryGetValue(entry.LinkTarget!, out var target) || target.Mode != entry.Mode))
        {
            verbatim.Refuse($"the hard link '{printable}' does not name its target canonically with the target's mode");
        }
    }

    private VddkException TooLarge(string what, string option) => new(
        ErrorCodes.ArchiveTooLarge,
        $"The archive '{_archivePath}' is refused because {what}; a real VDDK is about 70 MB in some 400 entries, so this looks like an archive bomb or not a VDDK. If the archive is genuine, raise the limit: {LimitProperty(option)}.",
        _archivePath);

    /// <summary>The user-facing name of a limit: the MSBuild property that sets it.</summary>
    private static string LimitProperty(string option) => option switch
    {
        nameof(VddkArchiveReadOptions.MaxEntryBytes) => "VddkMaxEntrySize (e.g. -p:VddkMaxEntrySize=8GiB)",
        nameof(VddkArchiveReadOptions.MaxTotalBytes) => "VddkMaxTotalSize (e.g. -p:VddkMaxTotalSize=32GiB)",
        _ => "VddkMaxEntryCount (e.g. -p:VddkMaxEntryCount=500000)",
    };

    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<IArchiveEntrySource> OpenAsync(VerbatimLayerCheck? verbatim, CancellationToken cancellationToken)
    {
        VddkArchiveFile.Check(_archivePath); // never open a FIFO or a device: the open itself may block
        FileStream file;
        try
        {
            file = new FileStream(_archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new VddkException(ErrorCodes.ArchiveNotFound, $"The VDDK archive '{_archivePath}' does not exist. Download the VDDK for Linux from VMware/Broadcom and give the path of the .tar.gz file.", _archivePath, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw VddkArchiveFile.Unreadable(_archivePath, ex);
        }

        try
        {
            var head = new byte[ArchiveFormatSniffer.HeadLength];
            var headLength = await file.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            file.Seek(0, SeekOrigin.Begin);
            var format = ArchiveFormatSniffer.Detect(head.AsSpan(0, headLength));
            _log.Detail($"'{_archivePath}' is {format} (recognised by its first bytes).");
            if (format != ArchiveFormat.TarGzip)
            {
                verbatim?.Refuse($"the archive is {format}, and a layer is gzip");
            }
            switch (format)
            {
                case ArchiveFormat.Tar:
                    return new TarEntrySource(file, null);
                case ArchiveFormat.TarGzip:
                    var gzipCheck = new GzipIntegrityCheck(_archivePath, verbatim);
                    var compressed = gzipCheck.TrackCompressed(verbatim?.ObserveFile(file) ?? file);
                    // Inflating (and hashing and copying the compressed side) on a thread of its own, ahead of the
                    // tar parsing and hashing that follow: the two halves take about as long as each other.
                    var gzip = gzipCheck.Track(Ahead(new GZipStream(compressed, System.IO.Compression.CompressionMode.Decompress, leaveOpen: false)));
                    return new TarEntrySource(await RequireTarAsync(gzip, "gzip", cancellationToken).ConfigureAwait(false), gzipCheck.VerifyAsync, verbatim);
                case ArchiveFormat.TarXz:
                    return new TarEntrySource(await RequireTarAsync(Ahead(new ConcatenatedXzStream(file)), "xz", cancellationToken).ConfigureAwait(false), null);
                case ArchiveFormat.TarBzip2:
                    var bzip2 = BZip2Stream.Create(file, SharpCompress.Compressors.CompressionMode.Decompress, decompressConcatenated: true, leaveOpen: false, tolerateTruncatedStream: false);
                    return new TarEntrySource(await RequireTarAsync(Ahead(bzip2), "bzip2", cancellationToken).ConfigureAwait(false), null);
                case ArchiveFormat.Zip:
                    return new ZipEntrySource(file);
                default:
                    throw new VddkException(ErrorCodes.ArchiveFormatUnsupported,
                        $"'{_archivePath}' is not a VDDK archive in a supported format: {ArchiveFormatSniffer.Describe(head.AsSpan(0, headLength))}. Use the VMware-vix-disklib-*.x86_64.tar.gz as downloaded (tar, tar.gz, tar.xz, tar.bz2 and zip are accepted).",
                        _archivePath);
            }
        }
        catch (Exception ex) when (ex is not VddkException and not OperationCanceledException)
        {
            await file.DisposeAsync().ConfigureAwait(false);
            if (ArchiveFailures.IsDamage(ex))
            {
                throw ArchiveFailures.Corrupt(_archivePath, $"opening it failed: {ex.Message}", ex);
            }
            throw;
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private Stream Ahead(Stream decompressing) => _options.ReadAhead ? new ReadAheadStream(decompressing) : decompressing;

    /// <summary>A compressed file must hold a tar: checks the first decompressed block, then replays it.</summary>
    [AsyncMethodBuilder(typeof(PrecompiledTaskMethodBuilder<>))]
    private async Task<Stream> RequireTarAsync(Stream decompressed, string compression, CancellationToken cancellationToken)
    {
        var head = new byte[512];
        var read = await decompressed.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            return decompressed; // an empty tar: no entries, reported as "no top folder" by the tree checks
        }
        if (read < head.Length || !ArchiveFormatSniffer.LooksLikeTarHeader(head))
        {
            await decompressed.DisposeAsync().ConfigureAwait(false);
            if (ArchiveFormatSniffer.CompressionName(ArchiveFormatSniffer.Detect(head.AsSpan(0, read))) is { } inner)
            {
                // A .tar.gz gzipped again (a server's Content-Encoding saved as it came, a tool that compressed a copy).
                var undo = compression switch
                {
                    "gzip" => "gzip -dc",
                    "xz" => "xz -dc",
                    _ => "bzip2 -dc",
                };
                var result = inner switch
                {
                    "gzip" => "vddk.tar.gz",
                    "xz" => "vddk.tar.xz",
                    "bzip2" => "vddk.tar.bz2",
                    _ => "vddk.zip",
                };
                throw new VddkException(ErrorCodes.ArchiveFormatUnsupported,
                    $"'{_archivePath}' is {compression}-compressed twice: what the {compression} holds is {inner} data, not a tar. Decompress the outer layer once ('{undo} \"{Path.GetFileName(_archivePath)}\" > {result}' gives the archive inside) and set VddkArchive to the result.",
                    _archivePath);
            }
            throw new VddkException(ErrorCodes.ArchiveFormatUnsupported,
                $"'{_archivePath}' is {compression}-compressed but does not contain a tar archive. A VDDK download is a tar inside gzip; use the VMware-vix-disklib-*.x86_64.tar.gz as downloaded.",
                _archivePath);
        }
        return new PrefixedStream(head, decompressed);
    }
}
