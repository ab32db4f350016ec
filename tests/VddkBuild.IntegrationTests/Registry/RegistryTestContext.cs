using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Registry;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Registry;

/// <summary>
/// Per-test workspace: a temp folder, a recording log, sessions with a controlled environment (no credentials
/// leak in from the machine), and hand-made images: a two-layer base and a derived image with one more layer.
/// </summary>
internal sealed class RegistryTestContext : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];
    private readonly List<RegistrySession> _sessions = [];

    public RegistryTestContext(ITestOutputHelper output)
    {
        Directory = Path.Combine(Path.GetTempPath(), "vddk-registry-test-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(Directory);
        Log = new RecordingBuildLog(output.WriteLine);
    }

    public string Directory { get; }

    public RecordingBuildLog Log { get; }

    /// <summary>Environment seen by the credential chain: only what the test puts here (HOME points into the temp folder).</summary>
    public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal);

    public T Own<T>(T disposable) where T : IAsyncDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    public RegistrySession Session(RegistryTransportOptions? options = null, IStaticCredentialProvider? inProcess = null)
    {
        Environment.TryAdd("HOME", Path.Combine(Directory, "home"));
        var session = RegistrySession.Create(
            WithFastRetries(options ?? new RegistryTransportOptions()),
            new CredentialOptions { GetEnvironmentVariable = name => Environment.GetValueOrDefault(name), InProcess = inProcess },
            Log);
        _sessions.Add(session);
        return session;
    }

    /// <summary>Tests that do not set their own retry bounds retry quickly and less often.</summary>
    private static RegistryTransportOptions WithFastRetries(RegistryTransportOptions options) =>
        options.Retry == new RetrySettings() ? options with { Retry = new RetrySettings { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(50) } } : options;

    public static RegistryTransportOptions Insecure(params string[] hosts) => new() { InsecureRegistries = hosts };

    /// <summary>A base image of two random layers (pushed by the caller), with a source serving its blobs.</summary>
    public (BuiltImage Image, LocalBlobSource Source) MakeBase(string name, int seed, Platform? platform = null)
    {
        platform ??= Platform.LinuxAmd64;
        var first = TestImages.CreateLayer(Path.Combine(Directory, "layers"), $"{name}-1", 48 * 1024, seed);
        var second = TestImages.CreateLayer(Path.Combine(Directory, "layers"), $"{name}-2", 32 * 1024, seed + 1);
        var lower = TestImages.Build(TestImages.Scratch(platform), first, platform);
        var image = TestImages.Build(TestImages.AsSource(lower), second, platform);
        return (image, new LocalBlobSource(name, [first, second]));
    }

    /// <summary>The "VDDK" image: <paramref name="baseImage"/> plus one more random layer.</summary>
    public BuiltImage Derive(SourceImage baseImage, int seed, int size = 96 * 1024) =>
        TestImages.Build(baseImage, TestImages.CreateLayer(Path.Combine(Directory, "layers"), $"vddk-{seed}", size, seed));

    public static ImageReference Reference(string authority, string repository) => ImageReference.ForRepository(authority, repository);

    public async ValueTask DisposeAsync()
    {
        foreach (var session in _sessions)
        {
            session.Dispose();
        }
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
