using VddkBuild.IO;
using VddkBuild.Tests.Layers;

namespace VddkBuild.Tests.IO;

public sealed class GrowingFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string NewPath() => Path.Combine(_temp.Path, $"{Guid.NewGuid():N}.tmp");

    private static byte[] Pattern(int length, int seed = 7)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Fact]
    public async Task A_follower_started_before_any_write_gets_every_byte_in_order()
    {
        var data = Pattern(3_000_000);
        using var file = GrowingFile.CreateNew(NewPath());
        await using var follower = file.OpenFollower(data.Length);
        var reading = Task.Run(async () =>
        {
            using var copy = new MemoryStream();
            await follower.CopyToAsync(copy, 10_000);
            return copy.ToArray();
        });

        for (var offset = 0; offset < data.Length; offset += 77_777)
        {
            file.Write(data.AsSpan(offset, Math.Min(77_777, data.Length - offset)));
            await Task.Yield();
        }
        file.Complete();

        Assert.Equal(data, await reading.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task A_follower_waits_for_bytes_not_yet_written_and_wakes_when_they_are()
    {
        using var file = GrowingFile.CreateNew(NewPath());
        await using var follower = file.OpenFollower(10);
        var buffer = new byte[10];
        var read = follower.ReadAsync(buffer).AsTask();
        await Task.Delay(100);
        Assert.False(read.IsCompleted); // nothing written yet

        file.Write("0123456789"u8);
        await Task.Delay(100);
        Assert.False(read.IsCompleted); // still in the writer's buffer: not visible

        file.Flush();
        Assert.Equal(10, await read.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("0123456789"u8.ToArray(), buffer);
        Assert.Equal(0, await follower.ReadAsync(buffer)); // its length reached: the end, whatever the writer does next
    }

    [Fact]
    public async Task A_follower_stops_at_its_length_even_when_the_file_grows_beyond_it()
    {
        var data = Pattern(1000);
        using var file = GrowingFile.CreateNew(NewPath());
        file.Write(data);
        file.Complete();
        await using var follower = file.OpenFollower(600);
        using var copy = new MemoryStream();
        await follower.CopyToAsync(copy);
        Assert.Equal(data[..600], copy.ToArray());
    }

    [Fact]
    public async Task Completing_the_file_short_of_a_followers_length_fails_that_follower()
    {
        using var file = GrowingFile.CreateNew(NewPath());
        await using var follower = file.OpenFollower(5000);
        file.Write(Pattern(3000));
        file.Complete();
        var error = await Assert.ThrowsAsync<IOException>(async () => await follower.CopyToAsync(Stream.Null));
        Assert.Contains("3000 bytes, short of the 5000", error.Message);
    }

    [Fact]
    public async Task Abandoning_the_file_wakes_and_fails_a_waiting_follower()
    {
        using var file = GrowingFile.CreateNew(NewPath());
        await using var follower = file.OpenFollower(5000);
        var reading = Task.Run(async () => await follower.CopyToAsync(Stream.Null));
        await Task.Delay(100);
        file.Abandon();
        var error = await Assert.ThrowsAsync<IOException>(() => reading.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("abandoned", error.Message);
    }

    [Fact]
    public async Task Disposing_the_writer_without_completing_fails_followers_that_need_more()
    {
        var file = GrowingFile.CreateNew(NewPath());
        await using var follower = file.OpenFollower(5000);
        file.Write(Pattern(1000));
        file.Flush();
        file.Dispose();
        var buffer = new byte[5000];
        Assert.Equal(1000, await follower.ReadAsync(buffer)); // what was visible is still read
        await Assert.ThrowsAsync<IOException>(async () => _ = await follower.ReadAsync(buffer));
    }

    [Fact]
    public async Task A_waiting_follower_honours_cancellation()
    {
        using var file = GrowingFile.CreateNew(NewPath());
        await using var follower = file.OpenFollower(100);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => _ = await follower.ReadAsync(new byte[100], cancel.Token));
    }

    [Fact]
    public async Task Followers_keep_reading_after_the_file_is_renamed_and_the_writer_closed()
    {
        var path = NewPath();
        var data = Pattern(700_000);
        var file = GrowingFile.CreateNew(path);
        await using var follower = file.OpenFollower(data.Length);
        file.Write(data);
        file.Complete();
        file.Dispose();
        File.Move(path, path + ".final");

        using var copy = new MemoryStream();
        await follower.CopyToAsync(copy);
        Assert.Equal(data, copy.ToArray());
        Assert.Equal(data, await File.ReadAllBytesAsync(path + ".final"));
    }

    [Fact]
    public async Task Synchronous_reads_wait_for_the_writer_too()
    {
        var data = Pattern(600_000);
        using var file = GrowingFile.CreateNew(NewPath());
        using var follower = file.OpenFollower(data.Length);
        var writer = Task.Run(async () =>
        {
            for (var offset = 0; offset < data.Length; offset += 100_000)
            {
                await Task.Delay(20);
                file.Write(data.AsSpan(offset, 100_000));
                file.Flush();
            }
        });
        using var copy = new MemoryStream();
        follower.CopyTo(copy);
        await writer;
        Assert.Equal(data, copy.ToArray());
    }

    [Fact]
    public void The_file_must_not_exist_yet()
    {
        var path = NewPath();
        File.WriteAllText(path, "someone else's");
        Assert.Throws<IOException>(() => GrowingFile.CreateNew(path));
        Assert.Equal("someone else's", File.ReadAllText(path));
    }
}
