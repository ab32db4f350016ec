using System.Collections.Concurrent;
using VddkBuild.Archive;
using VddkBuild.Diagnostics;

namespace VddkBuild.Tests.Archive;

/// <summary>A folder under the system temp folder, removed with everything in it (read-only directories included).</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = Directory.CreateTempSubdirectory("vddkbuild-archive-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (!Directory.Exists(Path))
        {
            return;
        }
        foreach (var directory in Directory.EnumerateDirectories(Path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint }))
        {
            File_SetWritable(directory);
        }
        Directory.Delete(Path, recursive: true);
    }

    private static void File_SetWritable(string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        System.IO.File.SetUnixFileMode(directory, System.IO.File.GetUnixFileMode(directory) | UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}

internal sealed class CollectingLog : IBuildLog
{
    public ConcurrentQueue<(string Code, string Message)> Warnings { get; } = new();
    public ConcurrentQueue<string> Lines { get; } = new();

    public void Info(string message) => Lines.Enqueue(message);
    public void Detail(string message) => Lines.Enqueue(message);
    public void Warn(string code, string message) => Warnings.Enqueue((code, message));
}

/// <summary>Records what the reader delivers; reads (or deliberately does not read) file content.</summary>
internal sealed class RecordingSink : IVddkEntrySink
{
    private readonly int _readAtMost;

    public RecordingSink(int readAtMost = int.MaxValue) => _readAtMost = readAtMost;

    public List<VddkEntry> Entries { get; } = [];
    public Dictionary<string, byte[]> Contents { get; } = new(StringComparer.Ordinal);
    public Func<VddkEntry, CancellationToken, ValueTask>? OnEntry { get; set; }

    public async ValueTask WriteEntryAsync(VddkEntry entry, Stream? content, CancellationToken cancellationToken)
    {
        Entries.Add(entry);
        if (OnEntry is not null)
        {
            await OnEntry(entry, cancellationToken);
        }
        if (content is null)
        {
            return;
        }
        Assert.Equal(entry.Length, content.Length);
        using var memory = new MemoryStream();
        var buffer = new byte[81920];
        while (memory.Length < _readAtMost)
        {
            var read = await content.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, _readAtMost - memory.Length)), cancellationToken);
            if (read == 0)
            {
                break;
            }
            memory.Write(buffer, 0, read);
        }
        Contents[entry.Path] = memory.ToArray();
    }
}

internal static class Read
{
    public static Task<VddkArchiveContents> Archive(string path, IVddkEntrySink? sink = null, IBuildLog? log = null, VddkArchiveReadOptions? options = null, CancellationToken cancellationToken = default) =>
        new VddkArchiveReader(path, options ?? VddkArchiveReadOptions.Default, log ?? new CollectingLog()).ReadAsync(sink ?? new RecordingSink(), cancellationToken);

    /// <summary>Reads and expects a <see cref="VddkException"/>; returns it.</summary>
    public static async Task<VddkException> Failure(string path, IVddkEntrySink? sink = null, VddkArchiveReadOptions? options = null) =>
        await Assert.ThrowsAsync<VddkException>(() => Archive(path, sink, null, options));
}
