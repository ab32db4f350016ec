using VddkBuild.TestSupport.Archives;
using VddkBuild.TestSupport.Images;
using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Infrastructure;

/// <summary>
/// The Forklift check must pass on an image made by the documented procedure (tar -xzf, Containerfile, podman build)
/// and must fail on each defect Forklift rejects, or it could not judge the project's images.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ForkliftCheckTests : IDisposable
{
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("vddkbuild-forklift-test-");
    private readonly ContainerToolsSandbox _sandbox = new();

    [SkippableFact]
    public async Task Passes_an_image_built_by_the_documented_procedure_on_the_stand_in_base()
    {
        Podman.Require();
        Requires.Tool("tar");
        var podman = new Podman(_sandbox);
        var baseInfo = StandInBaseImage.WriteOciLayout(Path.Combine(_work.FullName, "base"));
        await podman.TagAsync(await podman.LoadOciLayoutAsync(baseInfo.Location, baseInfo.Tag), "localhost/stand-in:latest");
        var context = Directory.CreateDirectory(Path.Combine(_work.FullName, "context")).FullName;
        var archive = Path.Combine(_work.FullName, "VMware-vix-disklib-8.0.1-21562716.x86_64.tar.gz");
        SampleVddkArchive.Write(archive, new SampleVddkArchiveOptions { TargetUnpackedBytes = 2 * 1024 * 1024 });
        await ProcessRunner.RunCheckedAsync("tar", ["-xzf", archive, "-C", context]);
        File.WriteAllText(Path.Combine(context, "Containerfile"), """
            FROM localhost/stand-in:latest
            USER 1001
            COPY vmware-vix-disklib-distrib /vmware-vix-disklib-distrib
            ENTRYPOINT ["cp", "-r", "/vmware-vix-disklib-distrib", "/opt"]
            """);
        var image = await podman.BuildAsync(context, Path.Combine(context, "Containerfile"), "localhost/vddk:documented");

        var opt = await ForkliftCheck.RunInitContainerAsync(podman, image, Path.Combine(_work.FullName, "opt"));

        var chain = new FileInfo(Path.Combine(opt, ForkliftCheck.TreeName, "lib64", "libvixDiskLib.so"));
        Assert.Equal("libvixDiskLib.so.8", chain.LinkTarget);
    }

    [Fact]
    public void Rejects_a_missing_tree()
    {
        var error = Assert.Throws<ForkliftCheckException>(() => ForkliftCheck.AssertVddkTree(_work.FullName));

        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Accepts_a_well_formed_tree()
    {
        var lib64 = Lib64();
        File.WriteAllText(Path.Combine(lib64, "libvixDiskLib.so.8.0.1"), "elf");
        File.CreateSymbolicLink(Path.Combine(lib64, "libvixDiskLib.so.8"), "libvixDiskLib.so.8.0.1");
        File.CreateSymbolicLink(Path.Combine(lib64, "libvixDiskLib.so"), "libvixDiskLib.so.8");

        ForkliftCheck.AssertVddkTree(_work.FullName);
    }

    [Fact]
    public void Rejects_a_broken_symlink_chain()
    {
        var lib64 = Lib64();
        File.CreateSymbolicLink(Path.Combine(lib64, "libvixDiskLib.so"), "libvixDiskLib.so.8");

        var error = Assert.Throws<ForkliftCheckException>(() => ForkliftCheck.AssertVddkTree(_work.FullName));

        Assert.Contains(error.Problems, p => p.Contains("broken symbolic link", StringComparison.Ordinal));
    }

    [Fact]
    public void Rejects_a_chain_without_the_major_version_link_nbdkit_loads()
    {
        var lib64 = Lib64();
        File.WriteAllText(Path.Combine(lib64, "libvixDiskLib.so.8.0.1"), "elf");
        File.CreateSymbolicLink(Path.Combine(lib64, "libvixDiskLib.so"), "libvixDiskLib.so.8.0.1");

        var error = Assert.Throws<ForkliftCheckException>(() => ForkliftCheck.AssertVddkTree(_work.FullName));

        Assert.Contains(error.Problems, p => p.Contains("libvixDiskLib.so.8 (the name nbdkit dlopens) is missing", StringComparison.Ordinal));
    }

    [Fact]
    public void Rejects_an_absolute_symlink_and_a_regular_unversioned_file()
    {
        var lib64 = Lib64();
        File.CreateSymbolicLink(Path.Combine(lib64, "libvixDiskLib.so"), "/opt/vmware-vix-disklib-distrib/lib64/libvixDiskLib.so.8.0.1");
        Assert.Contains(Assert.Throws<ForkliftCheckException>(() => ForkliftCheck.AssertVddkTree(_work.FullName)).Problems,
            p => p.Contains("absolute symlink", StringComparison.Ordinal));

        File.Delete(Path.Combine(lib64, "libvixDiskLib.so"));
        File.WriteAllText(Path.Combine(lib64, "libvixDiskLib.so"), "elf");
        Assert.Contains(Assert.Throws<ForkliftCheckException>(() => ForkliftCheck.AssertVddkTree(_work.FullName)).Problems,
            p => p.Contains("not the symlink chain", StringComparison.Ordinal));
    }

    [Fact]
    public void Rejects_files_and_directories_the_arbitrary_uid_cannot_read()
    {
        var lib64 = Lib64();
        File.WriteAllText(Path.Combine(lib64, "libvixDiskLib.so.8.0.1"), "elf");
        File.CreateSymbolicLink(Path.Combine(lib64, "libvixDiskLib.so.8"), "libvixDiskLib.so.8.0.1");
        File.CreateSymbolicLink(Path.Combine(lib64, "libvixDiskLib.so"), "libvixDiskLib.so.8");
        var secret = Path.Combine(lib64, "libgcc_s.so.1");
        File.WriteAllText(secret, "elf");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var closed = Directory.CreateDirectory(Path.Combine(_work.FullName, ForkliftCheck.TreeName, "doc")).FullName;
        File.SetUnixFileMode(closed, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var error = Assert.Throws<ForkliftCheckException>(() => ForkliftCheck.AssertVddkTree(_work.FullName));

        Assert.Contains(error.Problems, p => p.StartsWith("lib64/libgcc_s.so.1: file mode 0600", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.StartsWith("doc/: directory mode 0700", StringComparison.Ordinal));
    }

    private string Lib64() => Directory.CreateDirectory(Path.Combine(_work.FullName, ForkliftCheck.TreeName, "lib64")).FullName;

    public void Dispose()
    {
        _sandbox.Dispose();
        _work.Delete(recursive: true);
    }
}
