using System.Runtime.CompilerServices;
using VddkBuild.IO;
using System.Security.Cryptography;
using VddkBuild.Threading;

namespace VddkBuild.Oci;

/// <summary>
/// A read-only pass-through that checks a blob against its descriptor: more bytes than the descriptor's size fail
/// at once, and reaching the end with a different size or digest fails (VDDK2006). A reader that stops before the
/// end gets no verdict, so consumers read blobs to the end.
/// </summary>
public sealed class DigestVerifyingStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly Descriptor _descriptor;
    private readonly string _sourceName;
    private readonly IDisposable? _owner;
    private readonly IncrementalHash _hash;
    private long _read;
    private bool _verified;

    /// <param name="inner">The blob's bytes; disposed with this stream.</param>
    /// <param name="descriptor">Expected size and digest (sha256 or sha512).</param>
    /// <param name="sourceName">Where the blob came from, for the error message.</param>
    /// <param name="owner">Disposed with this stream (e.g. the HTTP response the bytes come from).</param>
    public DigestVerifyingStream(Stream inner, Descriptor descriptor, string sourceName, IDisposable? owner = null)
    {
        _inner = inner;
        _owner = owner;
        _descriptor = descriptor;
        _sourceName = sourceName;
        _hash = IncrementalHash.CreateHash(descriptor.Digest.Algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256);
    }

    public override long Length => _descriptor.Size;
    public override long Position { get => _read; }

    public override int Read(Span<byte> buffer)
    {
        int n = _inner.Read(buffer);
        return Account(buffer[..n]);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Account(buffer.Span[..n]);
    }

    private int Account(ReadOnlySpan<byte> chunk)
    {
        if (chunk.Length == 0)
        {
            Verify();
            return 0;
        }
        _read += chunk.Length;
        if (_read > _descriptor.Size)
        {
            throw Mismatch($"more than the {_descriptor.Size} bytes its descriptor states");
        }
        _hash.AppendData(chunk);
        return chunk.Length;
    }

    private void Verify()
    {
        if (_verified)
        {
            return;
        }
        if (_read != _descriptor.Size)
        {
            throw Mismatch($"{_read} bytes instead of {_descriptor.Size}");
        }
        var actual = _descriptor.Digest.Algorithm + ":" + Convert.ToHexStringLower(_hash.GetCurrentHash());
        if (actual != _descriptor.Digest.Value)
        {
            throw Mismatch($"content with digest {actual}");
        }
        _verified = true;
    }

    private VddkException Mismatch(string what) =>
        new(ErrorCodes.BlobDigestMismatch,
            $"Blob {_descriptor.Digest} from {_sourceName} is damaged: it has {what}. Re-create or re-download the image (for an OCI layout, copy it again with skopeo).",
            _descriptor.Digest.Value);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            _inner.Dispose();
            _owner?.Dispose();
        }
        base.Dispose(disposing);
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder))]
    public override async ValueTask DisposeAsync()
    {
        _hash.Dispose();
        await _inner.DisposeAsync().ConfigureAwait(false);
        _owner?.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
