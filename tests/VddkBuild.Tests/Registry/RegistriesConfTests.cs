using VddkBuild.Registry;

namespace VddkBuild.Tests.Registry;

/// <summary>registries.conf read as containers/image reads it, for base image pulls (containers-registries.conf(5)).</summary>
public sealed class RegistriesConfTests : IDisposable
{
    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    private readonly string _root = Directory.CreateTempSubdirectory("vddk-regconf-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static IReadOnlyList<string> Sources(RegistriesConf conf, string reference) =>
        [.. conf.PullSources(ImageReference.Parse(reference)).Select(s => (s.IsMirror ? "mirror " : "primary ") + s.Reference + (s.Insecure ? " insecure" : string.Empty) + (s.Blocked ? " blocked" : string.Empty))];

    [Theory]
    [InlineData("", false)]
    [InlineData("# comment only\n\n   # [[registry]] in a comment\r\n\t\n", false)]
    [InlineData("[aliases]\n  \"fedora\" = \"registry.fedoraproject.org/fedora\"\n", false)]
    [InlineData("unqualified-search-registries = [\"registry.fedoraproject.org\"]\nshort-name-mode = \"enforcing\"", false)]
    [InlineData("# comment\n[[registry]]\nprefix = \"a.example.com\"\n", true)]
    [InlineData("[[ \"registry\" ]]\nlocation = \"a.example.com\"\n", true)]
    [InlineData("registry = [{ location = \"a.example.com\", blocked = true }]", true)]
    [InlineData("[registries.block]\nregistries = [\"a.example.com\"]", true)]
    [InlineData("  'registries'.insecure.registries = [\"a.example.com\"]", true)]
    [InlineData("unqualified-search-registries = [\n  \"registry.fedoraproject.org\",\n]", true)]
    public void Files_that_cannot_name_a_registry_table_skip_the_TOML_parser(string text, bool mayName)
    {
        Assert.Equal(mayName, RegistriesConf.MayNameRegistries(text));
    }

    [Fact]
    public void A_skipped_file_gives_what_the_parser_gives_no_entries()
    {
        const string Aliases = "[aliases]\n  \"fedora\" = \"registry.fedoraproject.org/fedora\"\nunqualified-search-registries = [\"docker.io\"]\n";
        var reference = ImageReference.Parse("registry.fedoraproject.org/fedora:40");

        Assert.False(RegistriesConf.MayNameRegistries(Aliases));
        Assert.Single(RegistriesConf.Parse(Aliases, "shortnames.conf").PullSources(reference));
        // The same aliases with a registry table after them are read, and the mirror applies.
        var withMirror = RegistriesConf.Parse(Aliases + "[[registry]]\nlocation = \"registry.fedoraproject.org\"\n[[registry.mirror]]\nlocation = \"mirror.example.com\"\n", "registries.conf");
        Assert.Equal(2, withMirror.PullSources(reference).Count);
    }

    [Fact]
    public void Mirrors_are_tried_in_order_then_the_primary_with_the_rest_of_the_reference_appended_to_each_location()
    {
        var conf = RegistriesConf.Parse("""
            [[registry]]
            prefix = "registry.access.redhat.com/ubi8"
            location = "registry.access.redhat.com/ubi8"
            [[registry.mirror]]
            location = "mirror1.example.net:5000/rh/ubi8"
            [[registry.mirror]]
            location = "mirror2.example.net/ubi8/"
            insecure = true
            """, "/etc/containers/registries.conf");

        Assert.Equal(
            ["mirror mirror1.example.net:5000/rh/ubi8/ubi-minimal:latest", "mirror mirror2.example.net/ubi8/ubi-minimal:latest insecure", "primary registry.access.redhat.com/ubi8/ubi-minimal:latest"],
            Sources(conf, "registry.access.redhat.com/ubi8/ubi-minimal:latest"));
        // A prefix is a path prefix, not a string prefix: ubi8-minimal is another namespace.
        Assert.Equal(["primary registry.access.redhat.com/ubi8-other/x:1"], Sources(conf, "registry.access.redhat.com/ubi8-other/x:1"));
        Assert.Equal(["primary quay.io/ubi8/ubi-minimal:latest"], Sources(conf, "quay.io/ubi8/ubi-minimal:latest"));
    }

    [Fact]
    public void The_longest_matching_prefix_wins_and_location_rewrites_the_primary()
    {
        var conf = RegistriesConf.Parse("""
            [[registry]]
            location = "registry.access.redhat.com"
            [[registry.mirror]]
            location = "wide.example.net"

            [[registry]]
            prefix = "registry.access.redhat.com/ubi8/ubi-minimal"
            location = "internal.example.net/copies/ubi-minimal"
            """, "r.conf");

        Assert.Equal(["primary internal.example.net/copies/ubi-minimal:8.10"], Sources(conf, "registry.access.redhat.com/ubi8/ubi-minimal:8.10"));
        Assert.Equal(["mirror wide.example.net/ubi9/ubi:latest", "primary registry.access.redhat.com/ubi9/ubi:latest"], Sources(conf, "registry.access.redhat.com/ubi9/ubi:latest"));
    }

    [Fact]
    public void A_wildcard_prefix_matches_every_subdomain_of_its_host_only_and_keeps_the_reference_when_it_has_no_location()
    {
        var conf = RegistriesConf.Parse("""
            [[registry]]
            prefix = "*.redhat.com"
            [[registry.mirror]]
            location = "mirror.example.net/redhat"
            """, "r.conf");

        Assert.Equal(["mirror mirror.example.net/redhat/ubi8/ubi-minimal:latest", "primary registry.access.redhat.com/ubi8/ubi-minimal:latest"],
            Sources(conf, "registry.access.redhat.com/ubi8/ubi-minimal:latest"));
        Assert.Equal(["primary redhat.com/ubi8/ubi-minimal:latest"], Sources(conf, "redhat.com/ubi8/ubi-minimal:latest"));
        Assert.Equal(["primary quay.io/redhat.com/x:1"], Sources(conf, "quay.io/redhat.com/x:1"));
        Assert.Equal(["primary registry.redhat.community/x:1"], Sources(conf, "registry.redhat.community/x:1"));
    }

    [Fact]
    public void Digest_only_and_tag_only_mirrors_and_mirror_by_digest_only_follow_the_reference_kind()
    {
        var conf = RegistriesConf.Parse("""
            [[registry]]
            location = "registry.access.redhat.com"
            [[registry.mirror]]
            location = "digests.example.net"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "tags.example.net"
            pull-from-mirror = "tag-only"
            [[registry.mirror]]
            location = "both.example.net"

            [[registry]]
            location = "quay.io"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "quay-mirror.example.net"
            """, "r.conf");

        Assert.Equal(["mirror tags.example.net/ubi8/ubi:latest", "mirror both.example.net/ubi8/ubi:latest", "primary registry.access.redhat.com/ubi8/ubi:latest"],
            Sources(conf, "registry.access.redhat.com/ubi8/ubi:latest"));
        Assert.Equal([$"mirror digests.example.net/ubi8/ubi@{Digest}", $"mirror both.example.net/ubi8/ubi@{Digest}", $"primary registry.access.redhat.com/ubi8/ubi@{Digest}"],
            Sources(conf, $"registry.access.redhat.com/ubi8/ubi@{Digest}"));
        Assert.Equal(["primary quay.io/a/b:1"], Sources(conf, "quay.io/a/b:1"));
        Assert.Equal([$"mirror quay-mirror.example.net/a/b@{Digest}", $"primary quay.io/a/b@{Digest}"], Sources(conf, $"quay.io/a/b@{Digest}"));
    }

    [Fact]
    public void An_empty_prefix_as_OpenShift_writes_for_ImageContentSourcePolicy_mirrors_defaults_to_the_location()
    {
        var conf = RegistriesConf.Parse("""
            unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
            short-name-mode = ""

            [[registry]]
              prefix = ""
              location = "registry.access.redhat.com/ubi8"
              mirror-by-digest-only = true

              [[registry.mirror]]
                location = "bastion.example.net:8443/ocp/ubi8"
            """, "/etc/containers/registries.conf");

        Assert.Equal([$"mirror bastion.example.net:8443/ocp/ubi8/ubi-minimal@{Digest}", $"primary registry.access.redhat.com/ubi8/ubi-minimal@{Digest}"],
            Sources(conf, $"registry.access.redhat.com/ubi8/ubi-minimal@{Digest}"));
        Assert.Equal(["primary registry.access.redhat.com/ubi8/ubi-minimal:latest"], Sources(conf, "registry.access.redhat.com/ubi8/ubi-minimal:latest"));
    }

    [Fact]
    public void A_blocked_source_is_skipped_by_its_own_name_so_mirrors_of_a_blocked_registry_still_serve_and_all_blocked_is_VDDK2011()
    {
        // As podman 4.3 (containers/image) does: blocked is checked for each source it connects to, by that source's name.
        var conf = RegistriesConf.Parse("""
            [[registry]]
            location = "registry.access.redhat.com"
            blocked = true
            [[registry.mirror]]
            location = "blocked-mirror.example.net"
            [[registry.mirror]]
            location = "mirror.example.net"

            [[registry]]
            location = "blocked-mirror.example.net"
            blocked = true

            [[registry]]
            location = "mirror.example.net"
            insecure = true

            [[registry]]
            location = "quay.io"
            blocked = true
            """, "/etc/containers/registries.conf");

        Assert.Equal(["mirror blocked-mirror.example.net/ubi8/ubi-minimal:latest blocked", "mirror mirror.example.net/ubi8/ubi-minimal:latest insecure", "primary registry.access.redhat.com/ubi8/ubi-minimal:latest blocked"],
            Sources(conf, "registry.access.redhat.com/ubi8/ubi-minimal:latest"));
        var error = Assert.Throws<VddkException>(() => conf.PullSources(ImageReference.Parse("quay.io/a/b:1")));
        Assert.Equal(ErrorCodes.BaseRegistryBlocked, error.Code);
        Assert.Contains("'quay.io' in /etc/containers/registries.conf", error.Message);

        var v1 = RegistriesConf.Parse("""
            [registries.search]
            registries = ["registry.access.redhat.com"]
            [registries.insecure]
            registries = ["10.0.0.5:5000"]
            [registries.block]
            registries = ["docker.io"]
            """, "v1.conf");
        Assert.Equal(ErrorCodes.BaseRegistryBlocked, Assert.Throws<VddkException>(() => v1.PullSources(ImageReference.Parse("busybox"))).Code);
        Assert.Equal(["primary 10.0.0.5:5000/ubi:1 insecure"], Sources(v1, "10.0.0.5:5000/ubi:1"));
    }

    [Theory]
    [InlineData("[[registry]]\nlocation = \"a.example\"\n[[registry.mirror]\nlocation = \"b\"\n", "line 3")]
    [InlineData("[[registry]]\nlocation = \"a.example\"\ninsecure = \"yes\"\n", "'insecure' must be true or false")]
    [InlineData("[[registry]]\nlocation = \"https://a.example\"\n", "URI scheme")]
    [InlineData("[[registry]]\nprefix = \"*.example.com/foo\"\n", "wildcard prefix")]
    [InlineData("[[registry]]\nprefix = \"example.*.com\"\n", "wildcard prefix")]
    [InlineData("[[registry]]\ninsecure = true\n", "neither prefix nor location")]
    [InlineData("[[registry]]\nlocation = \"a.example\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"\n", "pull-from-mirror")]
    [InlineData("[[registry]]\nlocation = \"a.example\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"tag-only\"\n", "cannot both be set")]
    [InlineData("[[registry]]\nlocation = \"a.example\"\n[[registry.mirror]]\ninsecure = true\n", "has no location")]
    [InlineData("unqualified-search-registries = [\"a\"]\n[registries.search]\nregistries = [\"a\"]\n", "mixes the version 1 format")]
    [InlineData("[[registry]]\nprefix = \"a.example/x\"\nlocation = \"a.example\"\n[[registry]]\nprefix = \"a.example/y\"\nlocation = \"a.example\"\ninsecure = true\n", "conflicting")]
    public void A_malformed_file_is_VDDK2010_naming_the_file_and_what_is_wrong(string text, string expected)
    {
        var error = Assert.Throws<VddkException>(() => RegistriesConf.Parse(text, "/etc/containers/registries.conf"));

        Assert.Equal(ErrorCodes.RegistriesConfInvalid, error.Code);
        Assert.Contains("'/etc/containers/registries.conf'", error.Message);
        Assert.Contains(expected, error.Message);
        Assert.Contains("VddkRegistriesConf=false", error.Message);
    }

    [Fact]
    public void Keys_the_base_pull_does_not_use_are_ignored_as_containers_image_ignores_them()
    {
        var conf = RegistriesConf.Parse("""
            unqualified-search-registries = ["registry.access.redhat.com", "docker.io"]
            short-name-mode = "enforcing"
            credential-helpers = ["containers-auth.json"]
            [aliases]
            "ubi8" = "registry.access.redhat.com/ubi8"
            [[registry]]
            location = "registry.access.redhat.com"
            future-key = 1
            [[registry.mirror]]
            location = "m.example.net"
            """, "r.conf");

        Assert.Equal(["mirror m.example.net/ubi8:latest", "primary registry.access.redhat.com/ubi8:latest"], Sources(conf, "registry.access.redhat.com/ubi8:latest"));
    }

    private string Write(string relative, string text)
    {
        var path = Path.Combine(_root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private static string Mirror(string prefix, string mirror) => $"[[registry]]\nprefix = \"{prefix}\"\nlocation = \"{prefix}\"\n[[registry.mirror]]\nlocation = \"{mirror}.example\"\n";

    [Fact]
    public void CONTAINERS_REGISTRIES_CONF_replaces_the_main_file_and_drop_ins_then_override_by_prefix_in_name_order_system_before_user()
    {
        var system = Write("etc/registries.conf", Mirror("a.example", "from-system-main"));
        var systemDropIns = Path.Combine(_root, "etc/registries.conf.d");
        Write("etc/registries.conf.d/20-b.conf", Mirror("a.example", "from-20"));
        Write("etc/registries.conf.d/10-a.conf", Mirror("a.example", "from-10") + Mirror("b.example", "b-from-10"));
        Write("etc/registries.conf.d/99-ignored.conf.bak", Mirror("b.example", "not-a-conf"));
        var named = Write("named.conf", Mirror("c.example", "from-named"));
        var home = Path.Combine(_root, "home");
        Write("home/.config/containers/registries.conf.d/50-user.conf", Mirror("b.example", "b-from-user"));
        var environment = new Dictionary<string, string?> { ["HOME"] = home, [RegistriesConf.EnvironmentVariable] = named };

        var conf = RegistriesConf.Load(k => environment.GetValueOrDefault(k), null, system, systemDropIns);

        Assert.Equal(["mirror from-20.example/x:1", "primary a.example/x:1"], Sources(conf, "a.example/x:1"));
        Assert.Equal(["mirror b-from-user.example/x:1", "primary b.example/x:1"], Sources(conf, "b.example/x:1"));
        Assert.Equal(["mirror from-named.example/x:1", "primary c.example/x:1"], Sources(conf, "c.example/x:1"));
        Assert.DoesNotContain(system, conf.Files);

        // Without the variable: the system file, unless the user has a registries.conf, which then replaces the system file and its drop-ins.
        environment.Remove(RegistriesConf.EnvironmentVariable);
        Assert.Equal(["mirror from-20.example/x:1", "primary a.example/x:1"], Sources(RegistriesConf.Load(k => environment.GetValueOrDefault(k), null, system, systemDropIns), "a.example/x:1"));
        Write("home/.config/containers/registries.conf", Mirror("a.example", "from-user-main"));
        var user = RegistriesConf.Load(k => environment.GetValueOrDefault(k), null, system, systemDropIns);
        Assert.Equal(["mirror from-user-main.example/x:1", "primary a.example/x:1"], Sources(user, "a.example/x:1"));
        Assert.Equal(["mirror b-from-user.example/x:1", "primary b.example/x:1"], Sources(user, "b.example/x:1"));
    }

    [Fact]
    public void A_named_main_file_that_does_not_exist_is_VDDK2010_and_a_malformed_drop_in_is_named()
    {
        var missing = Path.Combine(_root, "missing.conf");
        var error = Assert.Throws<VddkException>(() => RegistriesConf.Load(_ => null, missing, Path.Combine(_root, "none"), Path.Combine(_root, "none.d")));
        Assert.Equal(ErrorCodes.RegistriesConfInvalid, error.Code);
        Assert.Contains(missing, error.Message);

        var dropIns = Path.Combine(_root, "d");
        var bad = Write("d/01-bad.conf", "[[registry]\n");
        error = Assert.Throws<VddkException>(() => RegistriesConf.Load(_ => null, null, Path.Combine(_root, "none"), dropIns));
        Assert.Equal(ErrorCodes.RegistriesConfInvalid, error.Code);
        Assert.Contains(bad, error.Message);
        Assert.Contains("line 1", error.Message);
    }
}
