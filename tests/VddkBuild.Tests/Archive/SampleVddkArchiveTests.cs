using System.Diagnostics;
using VddkBuild.Archive;
using VddkBuild.TestSupport.Archives;

namespace VddkBuild.Tests.Archive;

public sealed class SampleVddkArchiveTests
{
    [Fact]
    public async Task Full_size_sample_is_vddk_shaped_compresses_like_libraries_and_is_quick_to_make()
    {
        using var temp = new TempFolder();
        var watch = Stopwatch.StartNew();
        var path = SampleVddkArchive.WriteTo(temp.Path, SampleVddkArchiveOptions.Vddk8);
        watch.Stop();

        Assert.Equal("VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz", Path.GetFileName(path));
        var sink = new RecordingSink(readAtMost: 0);
        var contents = await Read.Archive(path, sink);
        var unpacked = contents.Entries.Sum(e => e.Length);
        var ratio = (double)unpacked / new FileInfo(path).Length;

        Assert.InRange(unpacked, 69_000_000, 71_000_000);
        Assert.InRange(ratio, 3.0, 3.8);
        Assert.InRange(contents.Entries.Count, 300, 500);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"generation took {watch.Elapsed}");
        var big = contents.Entries.Single(e => e.Path.EndsWith("lib64/libvim-types.so", StringComparison.Ordinal));
        Assert.InRange(big.Length, unpacked * 0.4, unpacked * 0.55);
    }

    [Fact]
    public async Task Sample_content_declares_itself_a_fixture_and_is_deterministic()
    {
        using var temp = new TempFolder();
        var first = temp.File("a.tar");
        var second = temp.File("b.tar");
        var options = SampleVddkArchiveOptions.Small with { Compression = ArchiveCompression.None };
        SampleVddkArchive.Write(first, options);
        SampleVddkArchive.Write(second, options);
        Assert.Equal(await File.ReadAllBytesAsync(first), await File.ReadAllBytesAsync(second));

        var sink = new RecordingSink();
        await Read.Archive(first, sink);
        Assert.Contains("NO VMware software", System.Text.Encoding.UTF8.GetString(sink.Contents["vmware-vix-disklib-distrib/doc/README"]));
        var library = System.Text.Encoding.ASCII.GetString(sink.Contents["vmware-vix-disklib-distrib/lib64/libvixDiskLib.so.8.0.1"], 0, 80);
        Assert.StartsWith("VddkBuild test fixture", library);
    }

    [Fact]
    public async Task Sample_modes_vary_like_the_real_archive()
    {
        using var temp = new TempFolder();
        var path = SampleVddkArchive.WriteTo(temp.Path, SampleVddkArchiveOptions.Small);
        var contents = await Read.Archive(path);
        Assert.Equal(0x1A4, contents.Entries.Single(e => e.Path.EndsWith("/libgcc_s.so.1", StringComparison.Ordinal)).Mode);
        Assert.Equal(0x1ED, contents.Entries.Single(e => e.Path.EndsWith("/libcrypto.so.3", StringComparison.Ordinal)).Mode);
        Assert.Equal(15, contents.Entries.Count(e => e.Kind == VddkEntryKind.Symlink));
    }
}
