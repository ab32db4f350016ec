using System.Security.Cryptography;
using VddkBuild.Layers;
using VddkBuild.Oci;

namespace VddkBuild.Tests.Layers;

public sealed class ArchiveDigestMemoTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private int _hashes;

    public void Dispose() => _temp.Dispose();

    private async Task<Digest> HashAsync(string path, CancellationToken cancellationToken)
    {
        _hashes++;
        return await LayerCache.HashFileAsync(path, cancellationToken);
    }

    private Task<ArchiveDigestLookup> GetAsync(string file, TimeSpan? freshAge = null) =>
        ArchiveDigestMemo.GetAsync(file, _temp.Sub("memo"), HashAsync, CancellationToken.None, freshAge ?? TimeSpan.Zero);

    private static string Sha256(string file) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));

    [Fact]
    public async Task An_untouched_file_is_not_read_again()
    {
        var file = Path.Combine(_temp.Path, "a.tar.gz");
        await File.WriteAllBytesAsync(file, new byte[100_000]);

        var first = await GetAsync(file);
        var second = await GetAsync(file);

        Assert.False(first.Remembered);
        Assert.True(second.Remembered);
        Assert.Equal(first.Digest, second.Digest);
        Assert.Equal(Sha256(file), second.Digest.Value);
        Assert.Equal(1, _hashes);
    }

    [Fact]
    public async Task A_same_size_rewrite_with_the_old_mtime_put_back_is_hashed_again()
    {
        var file = Path.Combine(_temp.Path, "a.tar.gz");
        await File.WriteAllBytesAsync(file, new byte[100_000]);
        var mtime = File.GetLastWriteTimeUtc(file);
        var first = await GetAsync(file);
        await Task.Delay(20); // past the file system's timestamp granularity

        var bytes = new byte[100_000];
        bytes[5] = 1;
        await File.WriteAllBytesAsync(file, bytes);
        File.SetLastWriteTimeUtc(file, mtime); // what `touch -r` or `cp -p` would do; the ctime still moves

        var second = await GetAsync(file);
        Assert.False(second.Remembered);
        Assert.NotEqual(first.Digest, second.Digest);
        Assert.Equal(Sha256(file), second.Digest.Value);
    }

    [Fact]
    public async Task A_file_replaced_by_another_is_hashed_again()
    {
        var file = Path.Combine(_temp.Path, "a.tar.gz");
        var other = Path.Combine(_temp.Path, "b.tar.gz");
        await File.WriteAllBytesAsync(file, new byte[100_000]);
        await File.WriteAllBytesAsync(other, Enumerable.Repeat((byte)7, 100_000).ToArray());
        File.SetLastWriteTimeUtc(other, File.GetLastWriteTimeUtc(file));
        await GetAsync(file);

        File.Move(other, file, overwrite: true);

        var second = await GetAsync(file);
        Assert.False(second.Remembered);
        Assert.Equal(Sha256(file), second.Digest.Value);
    }

    [Fact]
    public async Task A_freshly_changed_file_is_not_remembered()
    {
        var file = Path.Combine(_temp.Path, "a.tar.gz");
        await File.WriteAllBytesAsync(file, new byte[1000]);

        await GetAsync(file, ArchiveDigestMemo.FreshFileAge);
        var second = await GetAsync(file, ArchiveDigestMemo.FreshFileAge);

        Assert.False(second.Remembered);
        Assert.Equal(2, _hashes);
    }

    [Fact]
    public async Task Only_the_most_recent_memos_are_kept()
    {
        for (var i = 0; i < ArchiveDigestMemo.Keep + 3; i++)
        {
            var file = Path.Combine(_temp.Path, $"a{i}.tar.gz");
            await File.WriteAllBytesAsync(file, [(byte)i]);
            await GetAsync(file);
        }
        Assert.Equal(ArchiveDigestMemo.Keep, Directory.GetFiles(_temp.Sub("memo"), "archive-*.json").Length);
    }

    [Fact]
    public async Task Memos_do_not_count_as_layer_cache_entries()
    {
        var archive = VddkBuild.TestSupport.Archives.SampleVddkArchive.WriteTo(_temp.Sub("in"), VddkBuild.TestSupport.Archives.SampleVddkArchiveOptions.Small);
        var work = _temp.Sub("work");
        await VddkLayerFactory.MakeAsync(archive, VddkBuild.Archive.VddkArchiveReadOptions.Default, new LayerWriterOptions(), work, new VddkBuild.TestSupport.Registry.RecordingBuildLog(), CancellationToken.None);
        Assert.Single(Directory.GetFiles(Path.Combine(work, "layer-cache"), "*.json"));
    }

    [Fact]
    public void The_identity_of_a_regular_file_is_read_and_a_directory_has_none()
    {
        var file = Path.Combine(_temp.Path, "a");
        File.WriteAllBytes(file, new byte[12345]);
        var identity = FileIdentity.TryRead(file);
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(identity);
            return;
        }
        Assert.NotNull(identity);
        Assert.Equal(12345, identity.Value.Size);
        Assert.NotEqual(0UL, identity.Value.Inode);
        Assert.Null(FileIdentity.TryRead(_temp.Path));
        Assert.Null(FileIdentity.TryRead(Path.Combine(_temp.Path, "missing")));
    }
}
