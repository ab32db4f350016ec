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

    [Theory]
    [InlineData((1L << 33) - 1, 1_700_000_000L)]  // the largest size the 11 octal digits hold
    [InlineData(1L << 33, 1_700_000_000L)]        // 8 GiB
    [InlineData((1L << 33) + 4096, 1_700_000_000L)] // 8 GiB + 4 KiB: cut to 11 digits it would read as 4096
    [InlineData(4096L, 1L << 33)]                 // 2^33 s: year 2242
    [InlineData(4096L, 10_413_792_000L)]          // 2300-01-01
    public async Task Sizes_and_times_beyond_eleven_octal_digits_are_kept_in_pax_records(long size, long mtime)
    {
        // Nothing of the content is kept: only the headers are checked, and the content's length.
        var output = new HeadCapturingStream(4 * DeterministicTarWriter.BlockSize);
        var writer = new DeterministicTarWriter(output);
        await writer.WriteFileAsync("vmware-vix-disklib-distrib/big", 0x1A4, mtime, size, new EndlessContent(), (_, _) => new InvalidOperationException(), CancellationToken.None);
        await writer.FinishAsync(CancellationToken.None);

        // Not seekable, so that the reader does not try to skip the content the capture left out.
        var entry = new TarReader(new ForwardOnly(output.Head)).GetNextEntry(copyData: false)!;
        Assert.Equal("vmware-vix-disklib-distrib/big", entry.Name);
        Assert.Equal(size, entry.Length);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(mtime), entry.ModificationTime);
        const long octal11 = (1L << 33) - 1;
        var headers = size > octal11 || mtime > octal11 ? 3 : 1; // pax header + records + ustar header
        Assert.Equal((headers * 512) + ((size + 511) / 512 * 512) + 1024, output.Length);
        if (headers == 3)
        {
            var records = System.Text.Encoding.ASCII.GetString(output.Head, 512, 512).TrimEnd('\0');
            Assert.Equal(size > octal11, records.Contains($" size={size}\n", StringComparison.Ordinal));
            Assert.Equal(mtime > octal11, records.Contains($" mtime={mtime}\n", StringComparison.Ordinal));
        }
    }

    /// <summary>Keeps the first bytes written and counts the rest.</summary>
    private sealed class HeadCapturingStream(int keep) : Stream
    {
        private readonly MemoryStream _head = new();

        public byte[] Head => _head.ToArray();
        public override long Length => _length;
        private long _length;

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var take = (int)Math.Clamp(keep - _head.Length, 0, buffer.Length);
            _head.Write(buffer[..take]);
            _length += buffer.Length;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private sealed class ForwardOnly(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }

    /// <summary>Content of any length without producing it: every read "fills" the whole buffer.</summary>
    private sealed class EndlessContent : Stream
    {
        public override int Read(byte[] buffer, int offset, int count) => count;
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(buffer.Length);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
