using Tomlyn;
using Tomlyn.Model;

namespace VddkBuild.Registry;

/// <summary>A mirror of a <c>[[registry]]</c> entry (<c>[[registry.mirror]]</c>).</summary>
public sealed record RegistryMirror(string Location, bool Insecure, string PullFromMirror);

/// <summary>One <c>[[registry]]</c> entry of registries.conf (v2), or a host of a v1 <c>[registries.insecure]</c>/<c>[registries.block]</c> list.</summary>
public sealed record RegistryEntry(string Prefix, string Location, bool Insecure, bool Blocked, bool MirrorByDigestOnly, IReadOnlyList<RegistryMirror> Mirrors, string File);

/// <summary>
/// Where a pull is attempted: a mirror, or the primary location (<see cref="IsMirror"/> false), in the order tried.
/// <see cref="BlockedBy"/> names the entry (prefix and file) that blocks this source's own name: it is skipped.
/// </summary>
public sealed record PullSource(ImageReference Reference, bool Insecure, bool IsMirror, string? BlockedBy = null)
{
    public bool Blocked => BlockedBy is not null;
}

/// <summary>
/// containers-registries.conf(5) as containers/image reads it, for pulls only: the main file
/// (<c>CONTAINERS_REGISTRIES_CONF</c>, else <c>$HOME/.config/containers/registries.conf</c> when it exists, else
/// <c>/etc/containers/registries.conf</c>), then the <c>.conf</c> drop-ins in alphanumeric order
/// (<c>/etc/containers/registries.conf.d</c> then <c>$HOME/.config/containers/registries.conf.d</c>; only the latter when
/// the user's main file is used). A drop-in's <c>[[registry]]</c> replaces the one with the same prefix. Only the
/// entries that redirect or restrict pulls are read (prefix, location, insecure, blocked, mirrors); other keys are
/// ignored, as containers/image ignores keys it does not know.
/// </summary>
public sealed class RegistriesConf
{
    public const string EnvironmentVariable = "CONTAINERS_REGISTRIES_CONF";
    public const string SystemFile = "/etc/containers/registries.conf";
    public const string SystemDropInDirectory = "/etc/containers/registries.conf.d";

    private RegistriesConf(IReadOnlyList<RegistryEntry> registries, IReadOnlyList<string> files)
    {
        Registries = registries;
        Files = files;
    }

    public static RegistriesConf Empty { get; } = new([], []);

    /// <summary>The entries in effect, sorted by prefix (as containers/image keeps them after merging drop-ins).</summary>
    public IReadOnlyList<RegistryEntry> Registries { get; }

    /// <summary>The files read, in order.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>
    /// Loads the configuration from the usual places. <paramref name="explicitFile"/> (VddkRegistriesConf) replaces the main
    /// file the way <c>CONTAINERS_REGISTRIES_CONF</c> does; a named main file that does not exist is VDDK2010.
    /// </summary>
    public static RegistriesConf Load(Func<string, string?> getEnvironmentVariable, string? explicitFile = null,
        string systemFile = SystemFile, string systemDropIns = SystemDropInDirectory)
    {
        var home = getEnvironmentVariable("HOME");
        var userFile = string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".config", "containers", "registries.conf");
        var userDropIns = string.IsNullOrEmpty(home) ? null : Path.Combine(home, ".config", "containers", "registries.conf.d");
        var named = !string.IsNullOrWhiteSpace(explicitFile) ? explicitFile : getEnvironmentVariable(EnvironmentVariable);
        string main;
        var dropInDirectories = new List<string>();
        if (!string.IsNullOrWhiteSpace(named))
        {
            main = Path.GetFullPath(named);
            if (!File.Exists(main))
            {
                throw new VddkException(ErrorCodes.RegistriesConfInvalid,
                    $"The registries.conf file '{main}' (named by {(string.IsNullOrWhiteSpace(explicitFile) ? EnvironmentVariable : "VddkRegistriesConf")}) does not exist. Name an existing file, or set VddkRegistriesConf=false to pull the base image without registries.conf mirrors.", main);
            }
            dropInDirectories.Add(systemDropIns);
        }
        else if (userFile is not null && File.Exists(userFile))
        {
            main = userFile;
        }
        else
        {
            main = systemFile;
            dropInDirectories.Add(systemDropIns);
        }
        if (userDropIns is not null)
        {
            dropInDirectories.Add(userDropIns);
        }
        var files = new List<string>();
        var merged = new SortedDictionary<string, RegistryEntry>(StringComparer.Ordinal);
        if (File.Exists(main))
        {
            files.Add(main);
            foreach (var entry in ParseFile(main))
            {
                merged[entry.Prefix] = entry;
            }
        }
        foreach (var directory in dropInDirectories)
        {
            if (!Directory.Exists(directory))
            {
                continue;
            }
            foreach (var dropIn in Directory.EnumerateFiles(directory, "*.conf").Order(StringComparer.Ordinal))
            {
                files.Add(dropIn);
                foreach (var entry in ParseFile(dropIn))
                {
                    merged[entry.Prefix] = entry;
                }
            }
        }
        return new RegistriesConf([.. merged.Values], files);
    }

    /// <summary>Parses one file's text; errors are VDDK2010 naming <paramref name="file"/> (and the line for TOML syntax).</summary>
    public static RegistriesConf Parse(string text, string file) => new([.. Parse(text, file, sort: true)], [file]);

    /// <summary>The entry whose prefix matches <paramref name="reference"/>'s name longest, or null.</summary>
    public RegistryEntry? Find(ImageReference reference)
    {
        // containers/image chooses the entry by the repository name, without tag or digest.
        var name = reference.RepositoryOnly.ToString();
        RegistryEntry? best = null;
        var bestLength = -1;
        foreach (var entry in Registries)
        {
            var length = MatchLength(name, entry.Prefix);
            if (length > bestLength)
            {
                best = entry;
                bestLength = length;
            }
        }
        return best;
    }

    /// <summary>
    /// Where to pull <paramref name="reference"/> from, in order: the mirrors its entry allows for a tag or digest
    /// reference, then the primary location. As containers/image does when it connects to each source, the entry
    /// matching the source's own (rewritten) name decides whether it is blocked (skipped) and may make it insecure; so
    /// a blocked registry's mirrors are still used. Every source blocked is VDDK2011.
    /// </summary>
    public IReadOnlyList<PullSource> PullSources(ImageReference reference)
    {
        var entry = Find(reference);
        var candidates = new List<(ImageReference Reference, bool Insecure, bool IsMirror)>();
        if (entry is null)
        {
            candidates.Add((reference, false, false));
        }
        else
        {
            var digested = reference.Digest is not null;
            foreach (var mirror in entry.Mirrors)
            {
                var use = entry.MirrorByDigestOnly
                    ? digested
                    : mirror.PullFromMirror switch { "digest-only" => digested, "tag-only" => !digested, _ => true };
                if (use)
                {
                    candidates.Add((Rewrite(reference, entry, mirror.Location), mirror.Insecure, true));
                }
            }
            candidates.Add((entry.Location.Length == 0 ? reference : Rewrite(reference, entry, entry.Location), entry.Insecure, false));
        }
        var sources = candidates.Select(c => Find(c.Reference) is { } own
                ? new PullSource(c.Reference, c.Insecure || own.Insecure, c.IsMirror, own.Blocked ? $"'{own.Prefix}' in {own.File}" : null)
                : new PullSource(c.Reference, c.Insecure, c.IsMirror))
            .ToList();
        if (sources.All(s => s.Blocked))
        {
            throw new VddkException(ErrorCodes.BaseRegistryBlocked,
                $"The base image {reference} is blocked: {string.Join("; ", sources.Select(s => $"{s.Reference} by blocked = true of registry prefix {s.BlockedBy}"))}. Set VddkBaseImage to an image this configuration allows "
                + "(a mirror registry, or oci-archive:FILE), add a mirror that is not blocked, or remove the block; VddkRegistriesConf=false ignores registries.conf for the base image.",
                entry?.File ?? reference.ToString());
        }
        return sources;
    }

    /// <summary>
    /// How many characters of <paramref name="reference"/> <paramref name="prefix"/> matches, or -1: the whole prefix
    /// followed by the end, ':', '/' or '@'; a <c>*.example.com</c> prefix matches any subdomain of the host.
    /// </summary>
    internal static int MatchLength(string reference, string prefix)
    {
        if (prefix.StartsWith("*.", StringComparison.Ordinal))
        {
            var suffix = prefix[1..];
            var index = reference.IndexOf(suffix, StringComparison.Ordinal);
            if (index < 0 || reference[..index].Contains('/'))
            {
                return -1;
            }
            index += suffix.Length;
            return index == reference.Length || reference[index] is ':' or '/' or '@' ? index : -1;
        }
        if (!reference.StartsWith(prefix, StringComparison.Ordinal))
        {
            return -1;
        }
        return reference.Length == prefix.Length || reference[prefix.Length] is ':' or '/' or '@' ? prefix.Length : -1;
    }

    private static ImageReference Rewrite(ImageReference reference, RegistryEntry entry, string location)
    {
        var text = reference.ToString();
        var rewritten = location + text[MatchLength(text, entry.Prefix)..];
        try
        {
            var parsed = ImageReference.Parse(rewritten);
            // A location must name its registry host (containers/image refuses a rewritten name that is not fully qualified).
            return parsed.ToString().StartsWith(location, StringComparison.Ordinal)
                ? parsed
                : throw new VddkException(ErrorCodes.ImageReferenceInvalid, $"'{location}' does not start with a registry host (host.domain[:port])");
        }
        catch (VddkException ex)
        {
            throw new VddkException(ErrorCodes.RegistriesConfInvalid,
                $"registries.conf entry '{entry.Prefix}' in {entry.File} rewrites the base image {reference} to '{rewritten}', which is not an image reference ({VddkException.Reason(ex)}). Correct its location.",
                entry.File, ex);
        }
    }

    /// <summary>
    /// False when no line can start a <c>registry</c> or <c>registries</c> table or key (v2 <c>[[registry]]</c>, v1
    /// <c>[registries.*]</c>, inline or dotted forms, quoted or not): the file holds only comments or tables a pull does
    /// not read (<c>[aliases]</c>, <c>unqualified-search-registries</c>, <c>short-name-mode</c>). It errs towards true: a
    /// value that starts a line with "registr" (a multi-line array of search registries) only costs a parse.
    /// </summary>
    internal static bool MayNameRegistries(string text)
    {
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            var content = line.TrimStart();
            if (content.IsEmpty || content[0] == '#')
            {
                continue;
            }
            if (content.TrimStart("[ \t\"'").StartsWith("registr", StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    private static IEnumerable<RegistryEntry> ParseFile(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VddkException(ErrorCodes.RegistriesConfInvalid,
                $"The registries.conf file '{file}' cannot be read: {VddkException.Reason(ex)}. Fix its permissions, or set VddkRegistriesConf=false.", file, ex);
        }
        return Parse(text, file, sort: false);
    }

    private static List<RegistryEntry> Parse(string text, string file, bool sort)
    {
        if (!MayNameRegistries(text))
        {
            // As distributions ship them (a registries.conf of comments, a shortnames.conf of [aliases]): nothing that
            // concerns a pull, and no TOML parser to start, which costs a build about 30 ms on every run.
            return [];
        }
        TomlTable document;
        try
        {
            document = TomlSerializer.Deserialize<TomlTable>(text, new TomlSerializerOptions { SourceName = file }) ?? new TomlTable();
        }
        catch (TomlException ex)
        {
            throw Invalid(file, $"line {ex.Line}, column {ex.Column}: {FirstLine(ex.Message)}", ex);
        }
        var entries = new List<RegistryEntry>();
        var hasV2 = document.ContainsKey("registry") || document.ContainsKey("unqualified-search-registries");
        if (document.TryGetValue("registries", out var v1))
        {
            if (hasV2)
            {
                throw Invalid(file, "it mixes the version 1 format ([registries.search], [registries.insecure], [registries.block]) with version 2 ([[registry]], unqualified-search-registries), which podman refuses too; keep one format");
            }
            var v1Table = v1 as TomlTable ?? throw Invalid(file, "'registries' must be a table");
            var hosts = new SortedDictionary<string, (bool Insecure, bool Blocked)>(StringComparer.Ordinal);
            foreach (var (list, insecure, blocked) in new[] { ("insecure", true, false), ("block", false, true) })
            {
                if (!v1Table.TryGetValue(list, out var section))
                {
                    continue;
                }
                var sectionTable = section as TomlTable ?? throw Invalid(file, $"[registries.{list}] must be a table");
                foreach (var host in Strings(sectionTable, "registries", file, $"[registries.{list}]"))
                {
                    var location = Location(host, file, $"[registries.{list}] registries");
                    hosts.TryGetValue(location, out var flags);
                    hosts[location] = (flags.Insecure || insecure, flags.Blocked || blocked);
                }
            }
            entries.AddRange(hosts.Select(h => new RegistryEntry(h.Key, h.Key, h.Value.Insecure, h.Value.Blocked, false, [], file)));
        }
        if (document.TryGetValue("registry", out var registries))
        {
            var array = registries as TomlTableArray ?? throw Invalid(file, "'registry' must be an array of tables ([[registry]])");
            var number = 0;
            foreach (var table in array)
            {
                number++;
                entries.Add(Entry(table, file, $"[[registry]] number {number}"));
            }
        }
        // One location named by several entries (several prefixes on one registry) must agree on insecure and blocked.
        foreach (var group in entries.Where(e => e.Location.Length > 0).GroupBy(e => e.Location, StringComparer.Ordinal))
        {
            if (group.Select(e => e.Insecure).Distinct().Count() > 1 || group.Select(e => e.Blocked).Distinct().Count() > 1)
            {
                throw Invalid(file, $"registry '{group.Key}' is defined several times with conflicting 'insecure' or 'blocked' settings");
            }
        }
        var byPrefix = new Dictionary<string, RegistryEntry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            byPrefix[entry.Prefix] = entry;
        }
        return sort ? [.. byPrefix.Values.OrderBy(e => e.Prefix, StringComparer.Ordinal)] : [.. byPrefix.Values];
    }

    private static RegistryEntry Entry(TomlTable table, string file, string where)
    {
        var location = Location(String(table, "location", file, where) ?? string.Empty, file, $"{where}: location");
        // An empty prefix is an absent one (OpenShift's machine-config operator writes prefix = "" for ImageContentSourcePolicy mirrors).
        var prefix = String(table, "prefix", file, where) is { Length: > 0 } written ? written : null;
        var named = prefix is null ? (location.Length == 0 ? null : $"'{location}'") : $"'{prefix}'";
        where = named is null ? where : $"{where} ({named})";
        if (prefix is null)
        {
            if (location.Length == 0)
            {
                throw Invalid(file, $"{where} sets neither prefix nor location");
            }
            prefix = location;
        }
        else
        {
            prefix = Location(prefix, file, $"{where}: prefix");
            if (prefix.Contains('*'))
            {
                var host = prefix.StartsWith("*.", StringComparison.Ordinal) ? prefix[2..] : null;
                if (host is null || host.Length == 0 || host.IndexOfAny(['*', '/', ':', '@']) >= 0)
                {
                    throw Invalid(file, $"{where}: a wildcard prefix must be written *.example.com (a host's subdomains, nothing after the host)");
                }
            }
            else if (location.Length == 0)
            {
                location = prefix;
            }
        }
        if (table.ContainsKey("pull-from-mirror"))
        {
            throw Invalid(file, $"{where}: pull-from-mirror belongs in a [[registry.mirror]] table, not in the [[registry]] itself");
        }
        var mirrorByDigestOnly = Bool(table, "mirror-by-digest-only", file, where);
        var mirrors = new List<RegistryMirror>();
        if (table.TryGetValue("mirror", out var mirrorValue))
        {
            var mirrorArray = mirrorValue as TomlTableArray ?? throw Invalid(file, $"{where}: 'mirror' must be an array of tables ([[registry.mirror]])");
            foreach (var mirror in mirrorArray)
            {
                var mirrorLocation = Location(String(mirror, "location", file, $"{where} mirror") ?? string.Empty, file, $"{where}: mirror location");
                if (mirrorLocation.Length == 0)
                {
                    throw Invalid(file, $"{where}: a [[registry.mirror]] has no location");
                }
                var pull = String(mirror, "pull-from-mirror", file, $"{where} mirror '{mirrorLocation}'") ?? string.Empty;
                if (pull is not ("" or "all" or "digest-only" or "tag-only"))
                {
                    throw Invalid(file, $"{where}: mirror '{mirrorLocation}' has pull-from-mirror = \"{pull}\"; write \"all\", \"digest-only\" or \"tag-only\"");
                }
                if (mirrorByDigestOnly && pull.Length > 0)
                {
                    throw Invalid(file, $"{where}: mirror-by-digest-only and a mirror's pull-from-mirror ('{mirrorLocation}') cannot both be set; keep one");
                }
                mirrors.Add(new RegistryMirror(mirrorLocation, Bool(mirror, "insecure", file, $"{where} mirror '{mirrorLocation}'"), pull));
            }
        }
        return new RegistryEntry(prefix, location, Bool(table, "insecure", file, where), Bool(table, "blocked", file, where), mirrorByDigestOnly, mirrors, file);
    }

    /// <summary>A location or prefix: no URI scheme (podman refuses one), trailing '/' dropped.</summary>
    private static string Location(string value, string file, string where)
    {
        var trimmed = value.Trim();
        if (trimmed.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || trimmed.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            throw Invalid(file, $"{where} '{value}' has a URI scheme, which registries.conf does not take; write host[:port][/path] (insecure = true allows plain HTTP)");
        }
        return trimmed.TrimEnd('/');
    }

    private static string? String(TomlTable table, string key, string file, string where) =>
        !table.TryGetValue(key, out var value) ? null
        : value as string ?? throw Invalid(file, $"{where}: '{key}' must be a string");

    private static bool Bool(TomlTable table, string key, string file, string where) =>
        table.TryGetValue(key, out var value)
        && (value as bool? ?? throw Invalid(file, $"{where}: '{key}' must be true or false"));

    private static IEnumerable<string> Strings(TomlTable table, string key, string file, string where)
    {
        if (!table.TryGetValue(key, out var value))
        {
            return [];
        }
        var array = value as TomlArray ?? throw Invalid(file, $"{where}: '{key}' must be an array of strings");
        return array.Select(item => item as string ?? throw Invalid(file, $"{where}: '{key}' must be an array of strings")).ToList();
    }

    private static string FirstLine(string message)
    {
        var newline = message.IndexOf('\n');
        return (newline < 0 ? message : message[..newline]).Trim();
    }

    private static VddkException Invalid(string file, string why, Exception? inner = null) =>
        new(ErrorCodes.RegistriesConfInvalid,
            $"The registries.conf file '{file}' is invalid: {why}. podman and skopeo refuse it too: correct it (see man containers-registries.conf), or set VddkRegistriesConf=false to pull the base image without it.",
            file, inner);
}
