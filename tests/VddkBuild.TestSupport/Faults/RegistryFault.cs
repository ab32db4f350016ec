using System.Text;
using Microsoft.AspNetCore.Http;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.TestSupport.Faults;

/// <summary>
/// One misbehaviour of the network or the registry, applied by <see cref="FaultProxy"/> to a request it matched.
/// <paramref name="Describe"/> is how the fault appears in test output and the README's scenario table.
/// </summary>
public sealed class RegistryFault
{
    private readonly Func<HttpContext, ReverseProxyForwarder, Task> _apply;

    private RegistryFault(string description, Func<HttpContext, ReverseProxyForwarder, Task> apply)
    {
        Description = description;
        _apply = apply;
    }

    public string Description { get; }

    internal Task ApplyAsync(HttpContext context, ReverseProxyForwarder forwarder) => _apply(context, forwarder);

    /// <summary>Reads <paramref name="bytes"/> of the request body (the client is mid-upload), then resets the connection.</summary>
    public static RegistryFault ResetAfterRequestBytes(int bytes) => new($"connection reset after {bytes} request bytes", async (context, _) =>
    {
        await ReadRequestBytesAsync(context, bytes);
        context.Abort();
    });

    /// <summary>
    /// nginx refusing a body over <c>client_max_body_size</c>: 413 with <c>Connection: close</c> as soon as the headers
    /// are in, the body never read, then (50 ms later) the connection closed; the unread body makes the close a reset,
    /// so a client still sending sees a broken pipe or a reset, or the 413 when it read it in time.
    /// </summary>
    public static RegistryFault RefuseBodyAndClose() => new("HTTP 413 + Connection: close, body unread", async (context, _) =>
    {
        context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
        context.Response.Headers.Connection = "close";
        context.Response.ContentType = "text/html";
        await context.Response.WriteAsync("<html><head><title>413 Request Entity Too Large</title></head><body>nginx</body></html>");
        await context.Response.CompleteAsync();
        await Task.Delay(50);
        context.Abort();
    });

    /// <summary>A proxy that drops a request it will not take: the connection reset right after the headers, no answer.</summary>
    public static RegistryFault DropWithoutAnswer() => new("connection reset after the request headers, no answer", (context, _) =>
    {
        context.Abort();
        return Task.CompletedTask;
    });

    /// <summary>Answers with <paramref name="status"/> and a distribution-style error body, optionally with Retry-After.</summary>
    public static RegistryFault Status(int status, string? retryAfter = null) => new(
        retryAfter is null ? $"HTTP {status}" : $"HTTP {status} Retry-After: {retryAfter}", async (context, _) =>
    {
        await DrainRequestAsync(context);
        context.Response.StatusCode = status;
        if (retryAfter is not null)
        {
            context.Response.Headers.RetryAfter = retryAfter;
        }
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync("{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"injected fault\"}]}");
    });

    /// <summary>Forwards, but writes the response body <paramref name="chunk"/> bytes at a time with a pause between.</summary>
    public static RegistryFault DripResponse(int chunk, TimeSpan pause) => new($"response dripped {chunk} B per {pause.TotalMilliseconds:0} ms", (context, forwarder) =>
    {
        context.Response.Body = new DrippingStream(context.Response.Body, chunk, pause);
        return forwarder.ForwardAsync(context);
    });

    /// <summary>Holds the request <paramref name="delay"/> before forwarding it (a slow hop; lets a token expire meanwhile).</summary>
    public static RegistryFault Delay(TimeSpan delay) => new($"request held {delay.TotalSeconds:0.#} s", async (context, forwarder) =>
    {
        await Task.Delay(delay, context.RequestAborted);
        await forwarder.ForwardAsync(context);
    });

    /// <summary>Forwards, keeps the upstream Content-Length, sends only <paramref name="fraction"/> of the body, then resets.</summary>
    public static RegistryFault TruncateResponse(double fraction) => new($"response body cut at {fraction:P0}", async (context, forwarder) =>
    {
        var truncating = new TruncatingStream(context.Response.Body, () => context.Response.ContentLength, fraction);
        context.Response.Body = truncating;
        try
        {
            await forwarder.ForwardAsync(context);
        }
        catch (TruncatedException)
        {
        }
        context.Abort();
    });

    /// <summary>Anything else (e.g. restarting the registry mid-request); the action owns the response.</summary>
    public static RegistryFault Custom(string description, Func<HttpContext, ReverseProxyForwarder, Task> apply) => new(description, apply);

    /// <summary>Reads up to <paramref name="bytes"/> of the request body (fewer if it is shorter).</summary>
    public static async Task<long> ReadRequestBytesAsync(HttpContext context, int bytes)
    {
        var buffer = new byte[Math.Min(bytes, 81920)];
        long read = 0;
        while (read < bytes)
        {
            var n = await context.Request.Body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, bytes - read)), context.RequestAborted);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        return read;
    }

    private static async Task DrainRequestAsync(HttpContext context)
    {
        // An answer before the body is read makes Kestrel close the connection; read it as a registry would.
        if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            await context.Request.Body.CopyToAsync(Stream.Null, context.RequestAborted);
        }
    }

    public override string ToString() => Description;
}

/// <summary>Thrown by <see cref="TruncatingStream"/> once its share of the body is written.</summary>
internal sealed class TruncatedException() : IOException("response truncated by the fault proxy");

internal sealed class TruncatingStream(Stream inner, Func<long?> contentLength, double fraction) : WriteOnlyStream(inner)
{
    private long _written;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var limit = (long)((contentLength() ?? 0) * fraction);
        var allowed = (int)Math.Max(0, Math.Min(buffer.Length, limit - _written));
        if (allowed > 0)
        {
            await Inner.WriteAsync(buffer[..allowed], cancellationToken);
            await Inner.FlushAsync(cancellationToken);
            _written += allowed;
        }
        if (allowed < buffer.Length)
        {
            // Let the client get the headers and the first part, so the break comes while it reads the body.
            await Task.Delay(200, cancellationToken);
            throw new TruncatedException();
        }
    }
}

internal sealed class DrippingStream(Stream inner, int chunk, TimeSpan pause) : WriteOnlyStream(inner)
{
    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        for (var offset = 0; offset < buffer.Length; offset += chunk)
        {
            await Inner.WriteAsync(buffer.Slice(offset, Math.Min(chunk, buffer.Length - offset)), cancellationToken);
            await Inner.FlushAsync(cancellationToken);
            await Task.Delay(pause, cancellationToken);
        }
    }
}

/// <summary>A response body wrapper: only async writes are used by the forwarder.</summary>
internal abstract class WriteOnlyStream(Stream inner) : Stream
{
    protected Stream Inner => inner;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public abstract override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default);
}
