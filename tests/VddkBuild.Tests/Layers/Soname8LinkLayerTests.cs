using System.Formats.Tar;
using System.IO.Compression;
using VddkBuild.Archive;
using VddkBuild.Layers;
using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Registry;

namespace VddkBuild.Tests.Layers;

/// <summary>
/// VddkAddSoname8Link in the layer: the link is in the layer of a VDDK 9 archive (so the archive's own gzip cannot be
/// the layer), the layer is reproducible, and the layer cache never hands out a layer made without it.
/// </summary>
public sealed class Soname8LinkLayerTests : IDisposable
{
    private const string So8 = "vmware-vix-disklib-distrib/lib64/libvixDiskLib.so.8";
    private static readonly VddkArchiveReadOptions WithLink = new() { AddSoname8Link = true };
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static Task<VddkLayer> MakeAsync(string archive, string work, RecordingBuildLog log, VddkArchiveReadOptions read, bool useCache = true) =>
        VddkLayerFactory.MakeAsync(archive, read, new LayerWriterOptions(), work, log, CancellationToken.None, useCache);

    private string Sample(SampleVddkArchiveOptions options) => SampleVddkArchive.WriteTo(_temp.Sub("in-" + Guid.NewGuid().ToString("N")), options);

    private static SampleVddkArchiveOptions Vddk9 => SampleVddkArchiveOptions.Vddk9 with { TargetUnpackedBytes = 2_000_000, DocumentationPages = 20 };

    private static Dictionary<string, TarEntry> LayerEntries(string layerFile)
    {
        using var gzip = new GZipStream(File.OpenRead(layerFile), CompressionMode.Decompress);
        using var reader = new TarReader(gzip);
        var entries = new Dictionary<string, TarEntry>(StringComparer.Ordinal);
        while (reader.GetNextEntry(copyData: false) is { } entry)
        {
            entries[entry.Name.TrimEnd('/')] = entry;
        }
        return entries;
    }

    [Fact]
    public async Task A_vddk9_layer_gets_the_relative_link_and_is_not_the_archive_itself()
    {
        var archive = Sample(Vddk9);
        var log = new RecordingBuildLog();

        var made = await MakeAsync(archive, _temp.Sub("work"), log, WithLink);

        Assert.Equal(LayerOrigin.Written, made.Origin);
        Assert.Contains("VddkAddSoname8Link adds lib64/libvixDiskLib.so.8", log.AllText);
        var link = LayerEntries(made.Layer.FilePath)[So8];
        Assert.Equal(TarEntryType.SymbolicLink, link.EntryType);
        Assert.Equal("libvixDiskLib.so.9.0.0.0", link.LinkName);
        Assert.Contains(made.Contents.Entries, e => e.Path == So8);
    }

    [Fact]
    public async Task The_layer_with_the_link_is_the_same_on_every_run()
    {
        var archive = Sample(Vddk9);

        var first = await MakeAsync(archive, _temp.Sub("work1"), new RecordingBuildLog(), WithLink);
        var second = await MakeAsync(archive, _temp.Sub("work2"), new RecordingBuildLog(), WithLink, useCache: false);

        Assert.Equal(first.Layer.Descriptor, second.Layer.Descriptor);
        Assert.Equal(first.Layer.DiffId, second.Layer.DiffId);
    }

    [Fact]
    public async Task A_cached_layer_without_the_link_is_not_reused_when_the_link_is_asked_for_and_back()
    {
        var archive = Sample(Vddk9);
        var work = _temp.Sub("work");

        var without = await MakeAsync(archive, work, new RecordingBuildLog(), VddkArchiveReadOptions.Default);
        var with = await MakeAsync(archive, work, new RecordingBuildLog(), WithLink);
        var withAgain = await MakeAsync(archive, work, new RecordingBuildLog(), WithLink);
        var withoutAgain = await MakeAsync(archive, work, new RecordingBuildLog(), VddkArchiveReadOptions.Default);

        Assert.Equal(LayerOrigin.Archive, without.Origin);
        Assert.DoesNotContain(So8, LayerEntries(without.Layer.FilePath).Keys);
        Assert.Equal(LayerOrigin.Written, with.Origin);
        Assert.NotEqual(without.Layer.DiffId, with.Layer.DiffId);
        Assert.Equal((LayerOrigin.Cache, with.Layer.Descriptor), (withAgain.Origin, withAgain.Layer.Descriptor));
        Assert.Contains(So8, LayerEntries(withAgain.Layer.FilePath).Keys);
        Assert.Equal((LayerOrigin.Cache, without.Layer.Descriptor), (withoutAgain.Origin, withoutAgain.Layer.Descriptor));
    }

    [Fact]
    public async Task On_a_vddk8_archive_the_archive_stays_the_layer_and_the_warning_is_given_again_from_the_cache()
    {
        var archive = Sample(SampleVddkArchiveOptions.Small);
        var work = _temp.Sub("work");
        var plain = await MakeAsync(archive, _temp.Sub("plain"), new RecordingBuildLog(), VddkArchiveReadOptions.Default, useCache: false);
        var log = new RecordingBuildLog();
        var again = new RecordingBuildLog();

        var made = await MakeAsync(archive, work, log, WithLink);
        var hit = await MakeAsync(archive, work, again, WithLink);

        Assert.Equal(LayerOrigin.Archive, made.Origin);
        Assert.Equal(plain.Layer.Descriptor, made.Layer.Descriptor);
        Assert.Single(log.Warnings(ErrorCodes.Soname8LinkNotAdded));
        Assert.Equal(LayerOrigin.Cache, hit.Origin);
        Assert.Single(again.Warnings(ErrorCodes.Soname8LinkNotAdded));
    }
}
