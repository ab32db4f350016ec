using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;

namespace VddkBuild.IntegrationTests.Tasks;

/// <summary>
/// The build as OpenShift runs a pod: a random UID with no /etc/passwd entry, group 0, HOME=/ (not writable),
/// XDG_RUNTIME_DIR naming a folder that does not exist, writable only where a volume is mounted (here: the test's
/// folder). Needs root to switch users (setpriv), like the other integration tests' infrastructure.
/// </summary>
[Collection(MSBuildCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // setpriv, modes
public sealed class PodUserTests : IDisposable
{
    private const string Uid = "1000770000";

    private readonly string _work = Directory.CreateTempSubdirectory("vddk-pod-").FullName;

    public PodUserTests() => File.SetUnixFileMode(_work, (UnixFileMode)0x1FF); // the mounted volume: writable for the pod's user

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private SampleProject PodProject() => new(_work)
    {
        Launcher = ["setpriv", "--reuid", Uid, "--regid", "0", "--clear-groups", "dotnet"],
        Environment = new Dictionary<string, string?>
        {
            ["HOME"] = "/",
            ["XDG_RUNTIME_DIR"] = $"/run/user/{Uid}",
            ["DOTNET_CLI_HOME"] = Writable(Path.Combine(_work, "cli")), // the dotnet CLI's own first-run files
            ["TMPDIR"] = _work,
            ["REGISTRY_AUTH_FILE"] = null,
            ["DOCKER_CONFIG"] = null,
        },
    };

    private static string Writable(string folder)
    {
        Directory.CreateDirectory(folder);
        File.SetUnixFileMode(folder, (UnixFileMode)0x1FF);
        return folder;
    }

    private static void OpenToEveryone(string folder)
    {
        foreach (var path in Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories).Prepend(folder))
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | (Directory.Exists(path) ? (UnixFileMode)0x1FF : (UnixFileMode)0x1B6));
        }
    }

    [Fact]
    public async Task A_random_uid_without_a_passwd_entry_and_HOME_slash_builds_the_image_and_an_archive_it_may_not_read_is_VDDK1019()
    {
        Assert.DoesNotContain($":{Uid}:", await File.ReadAllTextAsync("/etc/passwd"));
        var archive = SampleVddkArchive.WriteTo(Path.Combine(_work, "in"), SampleVddkArchiveOptions.Small);
        var baseImage = StandInBaseImage.WriteOciLayout(Path.Combine(_work, "base")).Reference;
        OpenToEveryone(_work);
        var unreadable = Path.Combine(_work, "in", "unreadable.tar.gz");
        File.Copy(archive, unreadable);
        File.SetUnixFileMode(unreadable, UnixFileMode.UserRead | UnixFileMode.UserWrite); // 0600, owned by root
        var hidden = Directory.CreateDirectory(Path.Combine(_work, "root-only")).FullName;
        var behindFolder = Path.Combine(hidden, "vddk.tar.gz");
        File.Copy(archive, behindFolder);
        File.SetUnixFileMode(hidden, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); // 0700, owned by root
        var pod = PodProject();
        Dictionary<string, string> Properties(string path) => new() { ["VddkArchive"] = path, ["VddkBaseImage"] = baseImage, ["VddkTasksDependsOn"] = string.Empty };

        var built = await pod.RunAsync("BuildVddkImage", Properties(archive), "--no-restore");
        var refused = await pod.RunAsync("BuildVddkImage", Properties(unreadable), "--no-restore", $"-p:VddkOutputDirectory={_work}/out2/");
        var unreachable = await pod.RunAsync("BuildVddkImage", Properties(behindFolder), "--no-restore", $"-p:VddkOutputDirectory={_work}/out2/");

        Assert.True(built.Succeeded, built.ToString());
        Assert.True(File.Exists(Path.Combine(pod.OutputDirectory, "vddk-8.0.1.oci.tar")), built.ToString());
        Assert.False(refused.Succeeded, refused.ToString());
        Assert.Contains($"error VDDK1019: The VDDK archive '{unreadable}' cannot be read: permission denied for the user this build runs as", refused.Output);
        Assert.DoesNotContain("VDDK1003", refused.Output);
        Assert.Contains($"error VDDK1019: The VDDK archive '{behindFolder}' cannot be opened: a folder on its path may not be entered", unreachable.Output);
        Assert.False(Directory.Exists(Path.Combine(_work, "out2")));
    }
}
