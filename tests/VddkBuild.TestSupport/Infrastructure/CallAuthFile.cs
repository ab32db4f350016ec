using System.Text;
using System.Text.Json.Nodes;

namespace VddkBuild.TestSupport.Infrastructure;

/// <summary>
/// An auth file for one podman/skopeo call (mode 0600, deleted on dispose), so credentials never appear on a command
/// line and one call's credentials never leak into the next (a test of anonymous access must really be anonymous).
/// </summary>
internal sealed class CallAuthFile : IDisposable
{
    private CallAuthFile(string? path) => Path = path;

    public string? Path { get; }

    public static CallAuthFile For(ContainerToolsSandbox sandbox, string reference, RegistryAccess access)
    {
        if (access.Credentials is not { } credentials)
        {
            return new CallAuthFile(null);
        }
        if (!OperatingSystem.IsLinux())
        {
            throw LinuxOnly.NotSupported();
        }
        var token = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.UserName}:{credentials.Password}"));
        var json = new JsonObject
        {
            ["auths"] = new JsonObject { [RegistryAccess.RegistryOf(reference)] = new JsonObject { ["auth"] = token } },
        }.ToJsonString();
        var path = System.IO.Path.Combine(sandbox.Root, $"auth-{Guid.NewGuid():N}.json");
        using (var stream = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        {
            stream.Write(Encoding.UTF8.GetBytes(json));
        }
        return new CallAuthFile(path);
    }

    public void Dispose()
    {
        if (Path is not null)
        {
            File.Delete(Path);
        }
    }
}
