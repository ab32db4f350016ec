using System.Globalization;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.TestSupport.Kubernetes.Simulators;

/// <summary>
/// s3rver (npm): a small S3 imitation that lacks ListMultipartUploads - the S3 a registry must not be put on. Started on
/// a free 127.0.0.1 port with one bucket, its data in a temporary folder, stopped by its PID. Its fixed keys are
/// <see cref="AccessKey"/>/<see cref="SecretKey"/>.
/// </summary>
public sealed class S3rverProcess : IAsyncDisposable
{
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";

    private readonly BackgroundProcess _process;
    private readonly string _directory;

    private S3rverProcess(BackgroundProcess process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Endpoint = new Uri($"http://127.0.0.1:{port}/");
    }

    public Uri Endpoint { get; }

    public static async Task<S3rverProcess> StartAsync(string bucket, CancellationToken cancellationToken = default)
    {
        var executable = Requires.Tool("s3rver");
        var directory = Directory.CreateTempSubdirectory("vddk-s3rver-").FullName;
        var port = FreePort.Next();
        List<string> arguments = ["-d", Path.Combine(directory, "data"), "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "--configure-bucket", bucket];
        var process = BackgroundProcess.Start(executable, arguments,
            ChildEnvironment.Minimal().With("HOME", directory), directory);
        var s3rver = new S3rverProcess(process, directory, port);
        try
        {
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
            await process.WaitUntilReadyAsync(async ct =>
            {
                using var response = await client.GetAsync(s3rver.Endpoint, ct);
                return true;
            }, TimeSpan.FromSeconds(30), cancellationToken);
        }
        catch
        {
            await s3rver.DisposeAsync();
            throw;
        }
        return s3rver;
    }

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
