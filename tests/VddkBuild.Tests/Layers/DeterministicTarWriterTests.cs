using System.Formats.Tar;
using VddkBuild.Layers;

namespace VddkBuild.Tests.Layers;

/// <summary>System.Formats.Tar as a second independent reader (GNU tar is the first, in LayerWriterTests).</summary>
public sealed class DeterministicTarWriterTests
{
    [Fact]
    public async Task Dotnet_tar_reader_sees_names_links_modes_and_times()
    {
        var longName = "vmware-vix-disklib-distrib/" + new string('a', 120) + "/" + new string('b', 150);
        var longTarget = string.Concat(Enumerable.Repeat("../x/", 40)) + "lib.so";
        var output = new MemoryStream();
        var writer = new DeterministicTarWriter(output);
        await writer.WriteDirectoryAsync("vmware-vix-disklib-distrib", 0x1ED, 1_700_000_000, CancellationToken.None);
        await writer.WriteFileAsync(longName, 0x1A4, 1_600_000_000, new byte[] { 1, 2, 3 }, CancellationToken.None);
        await writer.WriteSymlinkAsync("vmware-vix-disklib-distrib/l", longTarget, 5, CancellationToken.None);
        await writer.WriteHardlinkAsync("vmware-vix-disklib-distrib/h", longName, 0x1A4, 5, CancellationToken.None);
        await writer.FinishAsync(CancellationToken.None);
        Assert.Equal(0, output.Length % 512);

        output.Position = 0;
        using var reader = new TarReader(output);
        var entries = new List<TarEntry>();
        while (reader.GetNextEntry(copyData: true) is { } e)
        {
            entries.Add(e);
        }
        Assert.Equal(["vmware-vix-disklib-distrib/", longName, "vmware-vix-disklib-distrib/l", "vmware-vix-disklib-distrib/h"], entries.Select(e => e.Name));
        Assert.Equal(TarEntryType.Directory, entries[0].EntryType);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, entries[1].Mode);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_600_000_000), entries[1].ModificationTime);
        Assert.Equal(3, entries[1].Length);
        Assert.Equal(longTarget, entries[2].LinkName);
        Assert.Equal(TarEntryType.HardLink, entries[3].EntryType);
        Assert.Equal(longName, entries[3].LinkName);
        Assert.All(entries, e => Assert.Equal((0, 0, "", ""), (e.Uid, e.Gid, (e as PosixTarEntry)!.UserName, ((PosixTarEntry)e).GroupName)));
    }

    [Fact]
    public async Task Times_before_1970_are_kept_in_a_pax_record()
    {
        var output = new MemoryStream();
        var writer = new DeterministicTarWriter(output);
        await writer.WriteDirectoryAsync("d", 0x1ED, -86_400, CancellationToken.None);
        await writer.FinishAsync(CancellationToken.None);
        output.Position = 0;
        var entry = new TarReader(output).GetNextEntry()!;
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(-86_400), entry.ModificationTime);
    }
}
