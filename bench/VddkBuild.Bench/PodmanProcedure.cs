using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.Bench;

/// <summary>
/// The documented procedure: <c>tar -xzf</c>, <c>podman build</c> of the documented Dockerfile (FROM the stand-in
/// base in the bench registry), <c>podman push</c>. podman runs rootful with a private storage (overlay on ext4) and
/// configuration (<see cref="ContainerToolsSandbox"/>); the base is pulled once before timing, as on a machine that has
/// built before. Cold builds use <c>--no-cache</c> and a new repository; the warm row rebuilds (cache hits) and pushes
/// the same image again.
/// </summary>
internal sealed class PodmanProcedure(BenchRegistry registry, string workDirectory) : IDisposable
{
    private readonly ContainerToolsSandbox _sandbox = CreateSandbox(registry);

    public string BaseReference => $"{registry.Authority}/base:latest";

    private static ContainerToolsSandbox CreateSandbox(BenchRegistry registry)
    {
        var sandbox = new ContainerToolsSandbox("overlay");
        sandbox.AddInsecureRegistry(registry.Authority);
        return sandbox;
    }

    public async Task PrepareAsync()
    {
        await ProcessRunner.RunCheckedAsync("podman",
            ["pull", "--quiet", "--tls-verify=false", "--signature-policy", _sandbox.PolicyPath, BaseReference], _sandbox.Environment, TimeSpan.FromMinutes(5));
    }

    /// <summary>Extract + build (no cache) + push to a new repository.</summary>
    public async Task<Sample> ColdAsync(string archive, int repetition)
    {
        var context = Path.Combine(workDirectory, $"podman-context-{repetition}");
        if (Directory.Exists(context))
        {
            Directory.Delete(context, recursive: true);
        }
        Directory.CreateDirectory(context);
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"""
            FROM {BaseReference}
            USER 1001
            COPY vmware-vix-disklib-distrib /vmware-vix-disklib-distrib
            RUN mkdir -p /opt
            ENTRYPOINT ["cp", "-r", "/vmware-vix-disklib-distrib", "/opt"]

            """);
        var before = registry.Snapshot();
        var cost = await TimedCommand.RunAsync("tar", ["-xzf", archive, "-C", context], ChildEnvironment.Minimal());
        cost += await BuildAsync(context, repetition, noCache: true);
        cost += await PushAsync(repetition);
        var traffic = registry.Snapshot() - before;
        return new Sample(cost.Wall, null, traffic.BodyBytes, traffic.Requests, traffic.BlobUploads, cost.PeakRssKb, cost.Cpu);
    }

    /// <summary>Nothing changed: build again (every step a cache hit) and push again to the same repository.</summary>
    public async Task<Sample> WarmAsync(int repetition)
    {
        var context = Path.Combine(workDirectory, $"podman-context-{repetition}");
        var before = registry.Snapshot();
        var cost = await BuildAsync(context, repetition, noCache: false);
        cost += await PushAsync(repetition);
        var traffic = registry.Snapshot() - before;
        return new Sample(cost.Wall, null, traffic.BodyBytes, traffic.Requests, traffic.BlobUploads, cost.PeakRssKb, cost.Cpu);
    }

    private Task<CommandCost> BuildAsync(string context, int repetition, bool noCache)
    {
        List<string> args = ["build", "--quiet", "--pull=never", "--network", "none", "--signature-policy", _sandbox.PolicyPath,
            "--file", Path.Combine(context, "Dockerfile"), "--tag", Tag(repetition)];
        if (noCache)
        {
            args.Add("--no-cache");
        }
        args.Add(context);
        return TimedCommand.RunAsync("podman", args, _sandbox.Environment);
    }

    private Task<CommandCost> PushAsync(int repetition) =>
        TimedCommand.RunAsync("podman",
            ["push", "--quiet", "--tls-verify=false", "--signature-policy", _sandbox.PolicyPath, Tag(repetition), $"docker://{registry.Authority}/podman-{repetition}:8.0.1"],
            _sandbox.Environment);

    private static string Tag(int repetition) => $"localhost/vddk-bench-{repetition}:8.0.1";

    public void Dispose() => _sandbox.Dispose();
}
