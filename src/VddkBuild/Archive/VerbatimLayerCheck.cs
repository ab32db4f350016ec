using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using VddkBuild.IO;
using VddkBuild.Oci;
using VddkBuild.Threading;

namespace VddkBuild.Archive;

/// <summary>
/// Decides, during the one reading of a gzip-compressed archive, whether the archive file itself is a correct image
/// layer as it is (the shortcut of <c>crane append</c>): then its bytes are the layer blob (digest = sha256 of the
/// file), the tar inside is the diffID, and nothing is recompressed.
/// </summary>
/// <remarks>
/// <para>The reading is the normal one (<see cref="VddkArchiveReader"/>): every check and limit applies, and a bad
/// archive fails exactly as on the normal path. On top of that, the archive qualifies only when a container runtime
/// unpacking its bytes gets exactly the entries that were validated, with nothing the normal layer would change:</para>
/// <list type="bullet">
/// <item>one gzip member whose trailer covers the whole tar;</item>
/// <item>POSIX ustar or GNU headers only (no v7), zeros after a header's last field (offsets 500-511: Go reads
/// "tar\0" at 508 as a star header, with another name), strictly octal numbers, entry types file/directory/symlink/hard
/// link plus pax ('x') and GNU long-name ('L'/'K') records; pax records limited to path, linkpath, times and owner
/// (no extended attributes: a <c>security.capability</c> would reach the image), no global headers;</item>
/// <item>two independent readings agree on every entry (this class's own header walk and System.Formats.Tar: name,
/// type, size, link target), so a header crafted to be read differently by another tar parser is refused;</item>
/// <item>names already canonical (no "./", no root entry, every parent listed), ASCII only;</item>
/// <item>modes the normal layer would keep unchanged: files o+r, directories o+rx, no setuid/setgid/sticky bits,
/// hard links with their target's mode;</item>
/// <item>owner ids below 65536 (any owner works for the init container, which runs as an arbitrary UID and copies
/// the tree; ids above that range would fail to unpack under rootless podman);</item>
/// <item>only zero bytes after the tar's end-of-archive block.</item>
/// </list>
/// <para>Owners are kept as the archive has them (VMware's build ids); the normal layer writes 0:0. Both images behave
/// the same in Forklift: its init container copies the tree as an arbitrary UID.</para>
/// <para>The first reason the archive does not qualify is kept in <see cref="Refusal"/>; from then on nothing more is
/// hashed or copied.</para>
/// </remarks>
public sealed class VerbatimLayerCheck : IDisposable
{
    /// <summary>Owner ids a rootless podman maps by default (0..65535).</summary>
    public const int MaxOwnerId = 65535;

    private static readonly HashSet<string> AllowedPaxKeys = new(StringComparer.Ordinal)
    {
        "path", "linkpath", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname",
    };

    private readonly Stream? _copy;
    private readonly IncrementalHash _fileHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash _tarHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly Queue<HeaderRecord> _headers = new();
    private readonly byte[] _fileTail = new byte[8];
    private Stream? _observedFile;
    private long _fileLength;
    private long _tarLength;
    private bool _tarEnded;
    private bool _completed;

    /// <param name="copy">Where the archive's compressed bytes are copied as they are read (the candidate layer
    /// file); null to only decide.</param>
    public VerbatimLayerCheck(Stream? copy = null) => _copy = copy;

    /// <summary>Why the archive cannot be the layer as it is; null while it still can.</summary>
    public string? Refusal { get; private set; }

    /// <summary>True when the whole archive was read and nothing refused it.</summary>
    public bool Qualifies => Refusal is null && _completed;

    /// <summary>sha256 of the archive file as read (the layer digest when it qualifies).</summary>
    public Digest FileDigest { get; private set; }

    public long FileLength => _fileLength;

    /// <summary>sha256 of the decompressed tar, end padding included (the layer's diffID when it qualifies).</summary>
    public Digest TarDigest { get; private set; }

    public long TarLength => _tarLength;

    /// <summary>Records why the archive does not qualify (the first reason wins) and stops the copying and hashing.</summary>
    internal void Refuse(string reason)
    {
        Refusal ??= reason;
    }

    internal bool Active => Refusal is null;

    /// <summary>Wraps the archive file: every byte read is hashed and copied.</summary>
    internal Stream ObserveFile(Stream file)
    {
        _observedFile = new FileObserver(file, this);
        return _observedFile;
    }

    internal void OnFileBytes(ReadOnlySpan<byte> data)
    {
        if (!Active || data.IsEmpty)
        {
            return;
        }
        _fileHash.AppendData(data);
        try
        {
            _copy?.Write(data);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not the archive's fault: give up the shortcut; the normal path writes its layer and reports the problem.
            Refuse($"its copy into the layer folder failed: {ex.Message}");
            return;
        }
        _fileLength += data.Length;
        if (data.Length >= 8)
        {
            data[^8..].CopyTo(_fileTail);
        }
        else
        {
            _fileTail.AsSpan(data.Length).CopyTo(_fileTail);
            data.CopyTo(_fileTail.AsSpan(8 - data.Length));
        }
    }

    /// <summary>Decompressed tar bytes, in order, including what follows the end-of-archive block.</summary>
    internal void OnTarBytes(ReadOnlySpan<byte> data)
    {
        if (!Active)
        {
            return;
        }
        _tarHash.AppendData(data);
        _tarLength += data.Length;
    }

    internal void OnTarEnd() => _tarEnded = true;

    /// <summary>One entry as the header walk read it (after its pax / GNU long-name records).</summary>
    internal void OnHeader(string name, char type, long size, string linkName)
    {
        if (Active)
        {
            _headers.Enqueue(new HeaderRecord(name, type, size, linkName));
        }
    }

    /// <summary>The header walk's record of the next entry, to compare with what System.Formats.Tar made of it.</summary>
    internal HeaderRecord? TakeHeader() => _headers.TryDequeue(out var record) ? record : null;

    /// <summary>Validates a pax extended header's records for use as they are.</summary>
    internal PaxOverrides ParsePax(ReadOnlySpan<byte> records)
    {
        var overrides = new PaxOverrides();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (!records.IsEmpty)
        {
            var space = records.IndexOf((byte)' ');
            if (space <= 0 || !int.TryParse(records[..space], out var length) || length <= space + 1 || length > records.Length || records[length - 1] != (byte)'\n')
            {
                Refuse("a pax extended header is malformed");
                return overrides;
            }
            var record = records[(space + 1)..(length - 1)];
            records = records[length..];
            var equals = record.IndexOf((byte)'=');
            if (equals <= 0)
            {
                Refuse("a pax extended header is malformed");
                return overrides;
            }
            var key = Encoding.ASCII.GetString(record[..equals]);
            var value = record[(equals + 1)..];
            if (!AllowedPaxKeys.Contains(key))
            {
                Refuse($"a pax header carries '{EntryPaths.Printable(key)}', which the normal layer drops (only names, times and owners are kept as they are)");
                return overrides;
            }
            if (!seen.Add(key))
            {
                Refuse($"a pax header repeats '{key}'");
                return overrides;
            }
            switch (key)
            {
                case "path":
                    overrides.Path = AsciiOrRefuse(value, "a pax path");
                    break;
                case "linkpath":
                    overrides.LinkPath = AsciiOrRefuse(value, "a pax link target");
                    break;
                case "mtime" or "atime" or "ctime":
                    if (!IsPaxTimeEveryReaderHolds(value))
                    {
                        Refuse($"a pax {key} ('{EntryPaths.Printable(Encoding.ASCII.GetString(value))}') is not a time Go and .NET read alike (digits, an optional fraction, at most {MaxPaxTime})");
                    }
                    break;
                case "uname" or "gname":
                    if (value.IndexOf((byte)0) >= 0)
                    {
                        Refuse($"a pax {key} contains a NUL byte, which Go's reader rejects");
                    }
                    break;
                case "uid" or "gid":
                    if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) || id > MaxOwnerId)
                    {
                        Refuse($"a pax {key} is not a number up to {MaxOwnerId}");
                    }
                    break;
            }
        }
        return overrides;
    }

    /// <summary>The largest ustar mtime field (11 octal digits, the year 2242); later times are past what Go-based
    /// runtimes set on a file (they go through nanoseconds since 1970 in 64 bits, which end in 2262).</summary>
    internal const long MaxPaxTime = 8589934591;

    /// <summary>
    /// A pax time Go's parsePAXTime and System.Formats.Tar read as the same instant: Go fails the whole archive on
    /// anything but an optionally signed integer with an optional '.' and digits; .NET ignores what its decimal
    /// parser (no sign) rejects, and fails on values past the year 9999.
    /// </summary>
    private static bool IsPaxTimeEveryReaderHolds(ReadOnlySpan<byte> value)
    {
        var dot = value.IndexOf((byte)'.');
        var seconds = dot < 0 ? value : value[..dot];
        var fraction = dot < 0 ? [] : value[(dot + 1)..];
        return !seconds.IsEmpty && seconds.Length <= 18
            && seconds.IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0
            && fraction.IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0
            && long.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture) <= MaxPaxTime;
    }

    /// <summary>A name or link field: ASCII without control characters, or the archive does not qualify.</summary>
    internal string? AsciiOrRefuse(ReadOnlySpan<byte> value, string what)
    {
        foreach (var b in value)
        {
            if (b is < 0x20 or >= 0x7f)
            {
                Refuse($"{what} is not plain ASCII");
                return null;
            }
        }
        return Encoding.ASCII.GetString(value);
    }

    /// <summary>
    /// After the last entry: reads whatever of the file the decompressor left unread (so the copy and the digest
    /// cover the whole file), then checks that the gzip trailer covers the whole tar (one member, nothing after it).
    /// </summary>
    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    internal async ValueTask CompleteAsync(CancellationToken cancellationToken)
    {
        if (Active && _observedFile is not null)
        {
            var buffer = new byte[64 * 1024];
            while (Active && await _observedFile.ReadAsync(buffer, cancellationToken).ConfigureAwait(false) > 0)
            {
            }
        }
        if (!Active)
        {
            return;
        }
        if (!_tarEnded)
        {
            Refuse("the tar has no end-of-archive block");
            return;
        }
        // The last 8 bytes of a one-member file are its trailer: CRC-32 and length of everything decompressed.
        // Several members (pigz --independent, concatenated files) end with a trailer for the last member only.
        if (_fileLength < 18 || _tarCrc is not { } crc
            || BinaryPrimitives.ReadUInt32LittleEndian(_fileTail) != crc
            || BinaryPrimitives.ReadUInt32LittleEndian(_fileTail.AsSpan(4)) != unchecked((uint)_tarLength))
        {
            Refuse("the gzip file is not one member ending the file (several members, or bytes after the gzip data)");
            return;
        }
        FileDigest = Digest.FromSha256Bytes(_fileHash.GetHashAndReset());
        TarDigest = Digest.FromSha256Bytes(_tarHash.GetHashAndReset());
        if (_copy is not null)
        {
            try
            {
                await _copy.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Refuse($"its copy into the layer folder failed: {ex.Message}");
                return;
            }
        }
        _completed = true;
    }

    /// <summary>The CRC-32 of everything decompressed (computed by the gzip integrity check), for the trailer comparison.</summary>
    internal void OnTarCrc(uint crc) => _tarCrc = crc;

    private uint? _tarCrc;

    public void Dispose()
    {
        _fileHash.Dispose();
        _tarHash.Dispose();
    }

    internal sealed record HeaderRecord(string Name, char Type, long Size, string LinkName);

    internal sealed class PaxOverrides
    {
        public string? Path { get; set; }
        public string? LinkPath { get; set; }
    }

    private sealed class FileObserver(Stream inner, VerbatimLayerCheck check) : ObservingReadStream(inner)
    {
        protected override void Observe(ReadOnlySpan<byte> data) => check.OnFileBytes(data);
    }
}
