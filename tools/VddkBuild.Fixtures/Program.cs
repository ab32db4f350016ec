using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;

// Fixtures for build.sh demo and manual checks. Exit codes: 0 done, 1 the check or command failed, 2 usage error.
const string Usage = """
    usage:
      VddkBuild.Fixtures base-image (--layout DIR | --archive FILE) [--tag latest] [--busybox /bin/busybox]
          Writes the stand-in base image (busybox, UBI-like layout, index with linux/amd64 and linux/arm64/v8).
          Prints the reference to use as VddkBaseImage (oci:DIR:tag or oci-archive:FILE:tag).
      VddkBuild.Fixtures sample-archive OUT [--version 8.0.1] [--build 21562716] [--size-mb 70] [--seed 1]
          Writes a VDDK-shaped archive (random bytes, no VMware code). OUT is a file, or a folder that receives
          VMware-vix-disklib-<version>-<build>.x86_64.tar.gz. Prints the archive's path.
      VddkBuild.Fixtures forklift-check IMAGE [--insecure]
          Loads IMAGE (oci-archive:FILE[:tag], oci:DIR[:tag] or docker://host/repo:tag) into a private podman storage,
          runs it as Forklift does (--user 1000680000:0 -v DIR:/opt --network none) and checks the copied tree.
    """;

try
{
    return args switch
    {
        ["base-image", .. var rest] => BaseImage(new Options(rest)),
        ["sample-archive", var output, .. var rest] when !output.StartsWith("--", StringComparison.Ordinal) => SampleArchive(output, new Options(rest)),
        ["forklift-check", var image, .. var rest] => await ForkliftCheckAsync(image, new Options(rest)),
        _ => UsageError(null),
    };
}
catch (UsageException ex)
{
    return UsageError(ex.Message);
}
catch (Exception ex) when (ex is ForkliftCheckException or ProcessFailedException or IOException or InvalidOperationException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"error: {ex.Message}");
    return 1;
}

static int UsageError(string? message)
{
    if (message is not null)
    {
        Console.Error.WriteLine($"error: {message}");
    }
    Console.Error.WriteLine(Usage);
    return 2;
}

static int BaseImage(Options options)
{
    var tag = options.Value("--tag") ?? StandInBaseImage.DefaultTag;
    var busybox = options.Value("--busybox") ?? StandInBaseImage.DefaultBusyboxPath;
    var layout = options.Value("--layout");
    var archive = options.Value("--archive");
    options.EnsureAllUsed();
    var info = (layout, archive) switch
    {
        ({ } dir, null) => StandInBaseImage.WriteOciLayout(dir, tag, busybox),
        (null, { } file) => StandInBaseImage.WriteOciArchive(file, tag, busybox),
        _ => throw new UsageException("base-image needs exactly one of --layout DIR or --archive FILE"),
    };
    Console.WriteLine(info.Reference);
    return 0;
}

static int SampleArchive(string output, Options options)
{
    var sample = new SampleVddkArchiveOptions
    {
        Version = options.Value("--version") ?? "8.0.1",
        BuildNumber = options.Value("--build") ?? "21562716",
        TargetUnpackedBytes = (long)((options.Double("--size-mb") ?? 70) * 1_000_000),
        Seed = (ulong)(options.Double("--seed") ?? 1),
    };
    options.EnsureAllUsed();
    var path = Directory.Exists(output) ? Path.Combine(output, SampleVddkArchive.FileName(sample)) : output;
    SampleVddkArchive.Write(path, sample);
    Console.WriteLine(Path.GetFullPath(path));
    return 0;
}

static async Task<int> ForkliftCheckAsync(string image, Options options)
{
    var insecure = options.Flag("--insecure");
    options.EnsureAllUsed();
    using var sandbox = new ContainerToolsSandbox();
    if (insecure && image.StartsWith("docker://", StringComparison.Ordinal))
    {
        sandbox.AddInsecureRegistry(RegistryAccess.RegistryOf(image));
    }
    var podman = new Podman(sandbox);
    var id = await podman.PullAsync(image, insecure ? RegistryAccess.Insecure : RegistryAccess.Default);
    var opt = await ForkliftCheck.RunInitContainerAsync(podman, id);
    try
    {
        var lib = Path.Combine(opt, ForkliftCheck.TreeName, "lib64", "libvixDiskLib.so");
        Console.WriteLine($"Forklift check passed for {image}: the init container copied the tree as {ForkliftCheck.ArbitraryUser}; lib64/libvixDiskLib.so -> {new FileInfo(lib).LinkTarget}.");
    }
    finally
    {
        Directory.Delete(opt, recursive: true);
    }
    return 0;
}

/// <summary>"--name value" and "--flag" options after the command's positional arguments.</summary>
internal sealed class Options
{
    private readonly List<string> _args;
    private readonly HashSet<int> _used = [];

    public Options(string[] args) => _args = [.. args];

    public string? Value(string name)
    {
        var index = _args.IndexOf(name);
        if (index < 0)
        {
            return null;
        }
        if (index + 1 >= _args.Count)
        {
            throw new UsageException($"{name} needs a value");
        }
        _used.Add(index);
        _used.Add(index + 1);
        return _args[index + 1];
    }

    public double? Double(string name) =>
        Value(name) is { } text
            ? double.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var number) && number >= 0
                ? number
                : throw new UsageException($"{name} needs a non-negative number, not '{text}'")
            : null;

    public bool Flag(string name)
    {
        var index = _args.IndexOf(name);
        if (index >= 0)
        {
            _used.Add(index);
        }
        return index >= 0;
    }

    public void EnsureAllUsed()
    {
        var unknown = _args.Where((_, i) => !_used.Contains(i)).ToList();
        if (unknown.Count > 0)
        {
            throw new UsageException($"unexpected argument(s): {string.Join(' ', unknown)}");
        }
    }
}

internal sealed class UsageException(string message) : Exception(message);
