using System.Runtime.CompilerServices;
using VddkBuild.IO;
using System.Diagnostics;
using VddkBuild.Diagnostics;
using VddkBuild.Threading;

namespace VddkBuild.Registry;

/// <summary>
/// Progress of one blob transfer. Transfers that finish within a couple of seconds stay silent; longer ones log a
/// line at normal verbosity every few seconds with bytes, percentage and rate.
/// </summary>
public sealed class TransferProgress
{
    private readonly IBuildLog _log;
    private readonly string _label;
    private readonly long _total;
    private readonly TimeSpan _quiet;
    private readonly TimeSpan _interval;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private long _bytes;
    private TimeSpan _nextReport;

    public TransferProgress(IBuildLog log, string label, long total, TimeSpan? quiet = null, TimeSpan? interval = null)
    {
        _log = log;
        _label = label;
        _total = total;
        _quiet = quiet ?? TimeSpan.FromSeconds(2);
        _interval = interval ?? TimeSpan.FromSeconds(5);
        _nextReport = _quiet;
    }

    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>A retried transfer starts its count again.</summary>
    public void Restart()
    {
        Interlocked.Exchange(ref _bytes, 0);
        _clock.Restart();
        lock (_gate)
        {
            _nextReport = _quiet;
        }
    }

    public void Add(long count)
    {
        var bytes = Interlocked.Add(ref _bytes, count);
        var elapsed = _clock.Elapsed;
        lock (_gate)
        {
            if (elapsed < _nextReport)
            {
                return;
            }
            _nextReport = elapsed + _interval;
        }
        _log.Info($"{_label}: {Format(bytes, _total, elapsed)}");
    }

    public static string Format(long bytes, long total, TimeSpan elapsed)
    {
        var percent = total > 0 ? $" ({100.0 * bytes / total:0}%)" : string.Empty;
        var rate = elapsed.TotalSeconds > 0 ? bytes / elapsed.TotalSeconds / (1024 * 1024) : 0;
        return $"{Megabytes(bytes)} of {Megabytes(total)}{percent}, {rate:0.0} MB/s";
    }

    public static string Megabytes(long bytes) => $"{bytes / (1024.0 * 1024.0):0.0} MB";
}

/// <summary>Counts bytes read from a source into a <see cref="TransferProgress"/> and keeps a request's watchdog alive.</summary>
internal sealed class ProgressReadStream(Stream inner, TransferProgress progress, RequestWatchdog? watchdog) : ReadOnlyStream
{
    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => throw new NotSupportedException();
    }

    public RequestWatchdog? Watchdog { get; set; } = watchdog;

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Report(n);
        return n;
    }

    [AsyncMethodBuilder(typeof(PrecompiledValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Report(n);
        return n;
    }

    private void Report(int n)
    {
        Watchdog?.Touch();
        if (n > 0)
        {
            progress.Add(n);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
