using System.Security.Cryptography;
using VddkBuild.Oci;

namespace VddkBuild.Registry;

/// <summary>
/// A read-only stream that hashes what passes through and, at the end, checks the size and sha256 digest a
/// descriptor promised (VDDK2006 otherwise). Reading past the promised size fails too. Disposes an owner
/// (the HTTP response) with itself.
/// </summary>
public sealed class DigestVerifyingStream : Stream
{
    private readonly Stream _inner;
    private readonly long _expectedSize;
    private readonly Digest _expectedDigest;
    private readonly string _subject;
    private readonly IDisposable? _owner;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;
    private bool _verified;

    public DigestVerifyingStream(Stream inner, long expectedSize, Digest expectedDigest, string subject, IDisposable? owner = null)
    {
        if (expectedDigest.Algorithm != "sha256")
        {
            throw new VddkException(ErrorCodes.MediaTypeUnsupported, $"Blob {expectedDigest} of {subject} uses digest algorithm '{expectedDigest.Algorithm}'; only sha256 is supported.", subject);
        }
        _inner = inner;
        _expectedSize = expectedSize;
        _expectedDigest = expectedDigest;
        _subject = subject;
        _owner = owner;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _expectedSize;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        return Account(buffer[..n]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Account(buffer.Span[..n]);
    }

    private int Account(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
        {
            Verify();
            return 0;
        }
        _read += data.Length;
        if (_read > _expectedSize)
        {
            throw new VddkException(ErrorCodes.BlobDigestMismatch,
                $"Blob {_expectedDigest} of {_subject} is longer than the {_expectedSize} bytes its descriptor states.", _subject);
        }
        _hash.AppendData(data);
        return data.Length;
    }

    private void Verify()
    {
        if (_verified)
        {
            return;
        }
        if (_read != _expectedSize)
        {
            throw new VddkException(ErrorCodes.BlobDigestMismatch,
                $"Blob {_expectedDigest} of {_subject} ended after {_read} bytes; its descriptor states {_expectedSize}.", _subject);
        }
        var actual = Digest.FromSha256Bytes(_hash.GetHashAndReset());
        if (actual != _expectedDigest)
        {
            throw new VddkException(ErrorCodes.BlobDigestMismatch,
                $"Blob of {_subject} has digest {actual}, not the {_expectedDigest} its descriptor states: the source delivered different content.", _subject);
        }
        _verified = true;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            _owner?.Dispose();
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }
}
