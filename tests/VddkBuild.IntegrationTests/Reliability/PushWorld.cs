using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Faults;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;
using VddkBuild.TestSupport.Registry;
using Xunit.Abstractions;

namespace VddkBuild.IntegrationTests.Reliability;

/// <summary>How the test registry authenticates.</summary>
internal enum RegistryAuth
{
    Anonymous,
    Basic,
    BearerToken,
}

/// <summary>
/// A real docker-registry with the stand-in base image in <c>base/ubi-minimal:latest</c>, a <see cref="FaultProxy"/>
/// in front (the sample project reaches the registry only through it), a small VDDK-shaped archive, and checks that
/// read the registry's storage, HEAD the blobs and copy the image with skopeo, independently of the project's code.
/// </summary>
internal sealed class PushWorld : IAsyncDisposable
{
    public const string User = "vddk-pusher";
    public const string Repository = "openshift-mtv/vddk";
    public const string BaseRepository = "base/ubi-minimal";

    private PushWorld(string work, ITestOutputHelper output, string password)
    {
        Work = work;
        Output = output;
        Password = password;
        Sample = new SampleBuild(work);
    }

    public string Work { get; }

    public ITestOutputHelper Output { get; }

    /// <summary>The registry password (random per world; tests assert it is printed nowhere).</summary>
    public string Password { get; }

    public DockerRegistryProcess Registry { get; private set; } = null!;

    public FaultProxy Proxy { get; private set; } = null!;

    public TestTokenServer? Tokens { get; private set; }

    public ContainerToolsSandbox Sandbox { get; private set; } = null!;

    public SampleBuild Sample { get; }

    public string Archive { get; private set; } = null!;

    public RegistryAuth Auth { get; private set; }

    public RegistryAccess Access => new(TlsVerify: false, Credentials: Auth == RegistryAuth.Anonymous ? null : new RegistryCredentials(User, Password));

    public static async Task<PushWorld> StartAsync(ITestOutputHelper output, RegistryAuth auth = RegistryAuth.Anonymous, SampleVddkArchiveOptions? archive = null)
    {
        Requires.Tool("docker-registry");
        Skopeo.Require();
        var world = new PushWorld(Directory.CreateTempSubdirectory("vddk-reliability-").FullName, output, "pw-" + Guid.NewGuid().ToString("N"));
        try
        {
            await world.InitializeAsync(auth, archive ?? SampleVddkArchiveOptions.Small);
        }
        catch
        {
            await world.DisposeAsync();
            throw;
        }
        return world;
    }

    private async Task InitializeAsync(RegistryAuth auth, SampleVddkArchiveOptions archive)
    {
        Auth = auth;
        var users = new Dictionary<string, string> { [User] = Password };
        DockerRegistryOptions options = new();
        if (auth == RegistryAuth.Basic)
        {
            options = options with { HtpasswdUsers = users };
        }
        else if (auth == RegistryAuth.BearerToken)
        {
            Tokens = await TestTokenServer.StartAsync(Path.Combine(Work, "tokens"), users);
            options = options with { Token = Tokens.Settings };
        }
        Registry = await DockerRegistryProcess.StartAsync(options);
        Proxy = await FaultProxy.StartAsync(Registry.BaseUri);
        Sandbox = new ContainerToolsSandbox();
        Sandbox.AddInsecureRegistry(Registry.Authority);
        Archive = SampleVddkArchive.WriteTo(Path.Combine(Work, "in"), archive);
        var layout = StandInBaseImage.WriteOciLayout(Path.Combine(Work, "base"));
        await new Skopeo(Sandbox).CopyAsync(layout.Reference, $"docker://{Registry.Authority}/{BaseRepository}:latest", destinationAccess: Access, all: true);
        if (auth != RegistryAuth.Anonymous)
        {
            // The way a CI job passes a secret: an environment variable MSBuild does not log, never a property.
            Sample.Environment["VDDK_REGISTRY_USERNAME"] = User;
            Sample.Environment["VDDK_REGISTRY_PASSWORD"] = Password;
        }
    }

    /// <summary>PublishVddk's properties: base and target both through the proxy, plain HTTP allowed.</summary>
    public Dictionary<string, string> PublishProperties(string tag) => new()
    {
        ["VddkArchive"] = Archive,
        ["VddkBaseImage"] = $"{Proxy.Authority}/{BaseRepository}:latest",
        ["VddkRegistry"] = Proxy.Authority,
        ["VddkRepository"] = Repository,
        ["VddkRegistryInsecure"] = "true",
        ["VddkImageTags"] = tag,
    };

    public async Task<BuildRun> PublishAsync(string tag, params string[] extra)
    {
        var run = await Sample.RunAsync("PublishVddk", PublishProperties(tag), extra);
        Output.WriteLine($"--- PublishVddk ({tag}): exit {run.ExitCode}, {run.Elapsed.TotalSeconds:0.0} s, {run.Retries} retries, errors [{string.Join(", ", run.ErrorCodes)}]");
        foreach (var line in run.Output.Split('\n').Where(l => l.Contains("retrying", StringComparison.Ordinal) || l.Contains("error VDDK", StringComparison.Ordinal) || l.Contains("VddkImageDigest", StringComparison.Ordinal)))
        {
            Output.WriteLine(line.TrimEnd());
        }
        return run;
    }

    /// <summary>
    /// What the tag points at, checked three independent ways: the registry's storage (every blob stored, linked,
    /// right size and sha256), a HEAD per blob through the registry API, and a skopeo copy (which verifies every
    /// digest). Fails the test when the tag points at an incomplete or wrong image.
    /// </summary>
    public async Task<StoredTagState> AssertTagIsAbsentOrCompleteAsync(string tag)
    {
        var state = StoredImageCheck.Inspect(Registry.StorageDirectory, Repository, tag);
        Output.WriteLine("storage: " + state);
        Assert.True(state.IsConsistent, state.ToString());
        if (!state.Exists)
        {
            return state;
        }
        if (Auth == RegistryAuth.Anonymous)
        {
            using var http = new HttpClient();
            foreach (var digest in state.BlobDigests)
            {
                using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri(Registry.BaseUri, $"/v2/{Repository}/blobs/{digest}")));
                Assert.True(head.IsSuccessStatusCode, $"HEAD {digest}: {(int)head.StatusCode}");
            }
        }
        var copy = Path.Combine(Work, "copied-" + Guid.NewGuid().ToString("N")[..8]);
        await new Skopeo(Sandbox).CopyAsync($"docker://{Registry.Authority}/{Repository}:{tag}", "oci:" + copy, sourceAccess: Access);
        Directory.Delete(copy, recursive: true);
        return state;
    }

    public async ValueTask DisposeAsync()
    {
        Sandbox?.Dispose();
        if (Proxy is not null) { await Proxy.DisposeAsync(); }
        if (Registry is not null) { await Registry.DisposeAsync(); }
        if (Tokens is not null) { await Tokens.DisposeAsync(); }
        try
        {
            Directory.Delete(Work, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
