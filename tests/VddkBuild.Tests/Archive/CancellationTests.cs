using VddkBuild.Archive;
using VddkBuild.TestSupport.Archives;
using static VddkBuild.TestSupport.Archives.VddkArchiveBuilder;

namespace VddkBuild.Tests.Archive;

public sealed class CancellationTests
{
    [Fact]
    public async Task Cancelled_token_stops_before_the_first_entry()
    {
        using var temp = new TempFolder();
        var path = SampleVddkArchive.WriteTo(temp.Path, SampleVddkArchiveOptions.Small);
        var sink = new RecordingSink();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Read.Archive(path, sink, cancellationToken: new CancellationToken(true)));
        Assert.Empty(sink.Entries);
    }

    [Fact]
    public async Task Cancelling_between_entries_stops_at_the_next_entry()
    {
        using var temp = new TempFolder();
        var path = SampleVddkArchive.WriteTo(temp.Path, SampleVddkArchiveOptions.Small);
        using var cts = new CancellationTokenSource();
        var sink = new RecordingSink(readAtMost: 0);
        sink.OnEntry = (entry, _) =>
        {
            if (sink.Entries.Count == 3)
            {
                cts.Cancel();
            }
            return ValueTask.CompletedTask;
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Read.Archive(path, sink, cancellationToken: cts.Token));
        Assert.Equal(3, sink.Entries.Count);
    }

    [Fact]
    public async Task Cancelling_inside_a_large_file_stops_the_copy()
    {
        using var temp = new TempFolder();
        var path = temp.File("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        new VddkArchiveBuilder { GzipLevel = System.IO.Compression.CompressionLevel.Fastest }.AddMinimalVddk()
            .AddGeneratedFile(Distrib("lib64/libvim-types.so"), 64L * 1024 * 1024, 3).Write(path);
        using var cts = new CancellationTokenSource();
        var sink = new ReadSomeThenCancel(cts);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Read.Archive(path, sink, cancellationToken: cts.Token));
        Assert.InRange(sink.BytesRead, 1, 4L * 1024 * 1024);
    }

    /// <summary>Reads 1 MiB of the big file, cancels, and keeps reading: the content stream must throw.</summary>
    private sealed class ReadSomeThenCancel(CancellationTokenSource cts) : IVddkEntrySink
    {
        public long BytesRead { get; private set; }

        public async ValueTask WriteEntryAsync(VddkEntry entry, Stream? content, CancellationToken cancellationToken)
        {
            if (content is null || !entry.Path.EndsWith("libvim-types.so", StringComparison.Ordinal))
            {
                return;
            }
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var read = await content.ReadAsync(buffer, cancellationToken);
                if (read == 0)
                {
                    return;
                }
                BytesRead += read;
                if (BytesRead >= 1024 * 1024)
                {
                    cts.Cancel();
                }
            }
        }
    }
}
