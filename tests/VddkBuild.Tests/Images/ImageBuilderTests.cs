using System.Text.Json.Nodes;
using VddkBuild.Images;
using VddkBuild.Oci;
using VddkBuild.Tests.Layers;

namespace VddkBuild.Tests.Images;

public sealed class ImageBuilderTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly TestLayout _layout;

    public ImageBuilderTests() => _layout = new TestLayout(_temp.Sub("layout"));

    public void Dispose() => _temp.Dispose();

    private static readonly ImageSettings Settings = new()
    {
        VddkVersion = "8.0.1",
        VddkBuildNumber = "21562716",
        Created = new DateTimeOffset(2023, 3, 29, 12, 15, 42, 765, TimeSpan.FromHours(2)),
        Labels = new Dictionary<string, string> { ["com.example.owner"] = "platform-team", ["name"] = "vddk" },
    };

    private async Task<(SourceImage Base, LayerBlob Layer)> InputsAsync(bool docker = false, Action<JsonObject>? editConfig = null)
    {
        _layout.WriteIndex(false, (_layout.AddImage(docker: docker, editConfig: editConfig), null));
        var image = await new OciLayoutSource(_layout.Root).ResolveAsync(Platform.LinuxAmd64, CancellationToken.None);
        var layer = await VddkEntries.WriteLayerAsync(_temp.Sub("layers"), VddkEntries.Sample());
        return (image, layer);
    }

    [Fact]
    public async Task The_config_runs_the_copy_as_user_1001_with_no_cmd_and_keeps_unknown_fields()
    {
        var (baseImage, layer) = await InputsAsync();
        var built = ImageBuilder.Build(baseImage, layer, Settings);
        var config = JsonNode.Parse(built.ConfigBytes)!.AsObject();
        var run = config["config"]!.AsObject();

        Assert.Equal("1001", (string?)run["User"]);
        Assert.Equal(["cp", "-r", "/vmware-vix-disklib-distrib", "/opt"], run["Entrypoint"]!.AsArray().Select(n => (string)n!));
        Assert.False(run.ContainsKey("Cmd"));
        Assert.Equal("kept", (string?)run["x-unknown-inner"]);
        Assert.Equal(2, run["Env"]!.AsArray().Count);
        Assert.True((bool)config["x-unknown-top"]!["keep"]!);
        Assert.Equal("1.5", config["x-unknown-top"]!["n"]!.ToJsonString());
        Assert.Equal("amd64", (string?)config["architecture"]);
        Assert.Equal("linux", (string?)config["os"]);
    }

    [Fact]
    public async Task Labels_name_the_vddk_version_and_build_and_user_labels_win()
    {
        var (baseImage, layer) = await InputsAsync();
        var labels = JsonNode.Parse(ImageBuilder.Build(baseImage, layer, Settings).ConfigBytes)!["config"]!["Labels"]!.AsObject();

        Assert.Equal("8.0.1", (string?)labels["org.opencontainers.image.version"]);
        Assert.Equal("21562716", (string?)labels["io.github.vddkbuild.vddk.build"]);
        Assert.Equal("VMware VDDK for Forklift (MTV)", (string?)labels["org.opencontainers.image.title"]);
        Assert.Contains("8.0.1 build 21562716", (string?)labels["org.opencontainers.image.description"], StringComparison.Ordinal);
        Assert.Equal("platform-team", (string?)labels["com.example.owner"]);
        Assert.Equal("vddk", (string?)labels["name"]);
    }

    [Fact]
    public async Task Without_a_build_number_there_is_no_build_label()
    {
        var (baseImage, layer) = await InputsAsync(editConfig: c => c["config"]!["Labels"]!["io.github.vddkbuild.vddk.build"] = "stale");
        var labels = JsonNode.Parse(ImageBuilder.Build(baseImage, layer, Settings with { VddkBuildNumber = null }).ConfigBytes)!["config"]!["Labels"]!.AsObject();
        Assert.False(labels.ContainsKey("io.github.vddkbuild.vddk.build"));
        Assert.DoesNotContain("build", (string?)labels["org.opencontainers.image.description"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Created_history_and_diff_ids_describe_the_added_layer()
    {
        var (baseImage, layer) = await InputsAsync(editConfig: c =>
            c["history"] = new JsonArray(new JsonObject { ["created_by"] = "base build" }, new JsonObject { ["created_by"] = "base build 2" }));
        var config = JsonNode.Parse(ImageBuilder.Build(baseImage, layer, Settings).ConfigBytes)!.AsObject();

        Assert.Equal("2023-03-29T10:15:42Z", (string?)config["created"]);
        var history = config["history"]!.AsArray();
        Assert.Equal(3, history.Count);
        Assert.Equal("base build", (string?)history[0]!["created_by"]);
        Assert.Equal("base build 2", (string?)history[1]!["created_by"]);
        Assert.Equal("2023-03-29T10:15:42Z", (string?)history[2]!["created"]);
        Assert.StartsWith("COPY vmware-vix-disklib-distrib /vmware-vix-disklib-distrib", (string?)history[2]!["created_by"], StringComparison.Ordinal);
        var diffIds = config["rootfs"]!["diff_ids"]!.AsArray().Select(n => (string)n!).ToList();
        Assert.Equal(3, diffIds.Count);
        Assert.Equal(layer.DiffId.Value, diffIds[^1]);
    }

    [Fact]
    public async Task The_manifest_lists_base_layers_then_the_vddk_layer_and_names_the_config()
    {
        var (baseImage, layer) = await InputsAsync();
        var built = ImageBuilder.Build(baseImage, layer, Settings);
        var manifest = OciJson.Deserialize<ImageManifest>(built.ManifestBytes, "manifest");

        Assert.Equal(MediaTypes.OciManifest, manifest.MediaType);
        Assert.Equal(MediaTypes.OciConfig, manifest.Config.MediaType);
        Assert.Equal(TestLayout.Sha256(built.ConfigBytes), manifest.Config.Digest.Value);
        Assert.Equal(built.ConfigBytes.Length, manifest.Config.Size);
        Assert.Equal([.. baseImage.Layers.Select(l => l.Digest), layer.Descriptor.Digest], manifest.Layers.Select(l => l.Digest));
        Assert.Equal(TestLayout.Sha256(built.ManifestBytes), built.Digest.Value);
        Assert.Equal(built.ManifestBytes.Length, built.ManifestDescriptor.Size);
        Assert.Equal(baseImage.ManifestDescriptor.Digest.Value, manifest.Annotations!["org.opencontainers.image.base.digest"]);
    }

    [Fact]
    public async Task Docker_base_layers_become_oci_media_types_with_the_same_digests()
    {
        var (baseImage, layer) = await InputsAsync(docker: true);
        var manifest = OciJson.Deserialize<ImageManifest>(ImageBuilder.Build(baseImage, layer, Settings).ManifestBytes, "manifest");

        Assert.All(manifest.Layers, l => Assert.Equal(MediaTypes.OciLayerGzip, l.MediaType));
        Assert.Equal(baseImage.Layers.Select(l => (l.Digest, l.Size)), manifest.Layers.Take(2).Select(l => (l.Digest, l.Size)));
        Assert.Equal(MediaTypes.OciConfig, manifest.Config.MediaType);
    }

    [Fact]
    public void Foreign_layers_keep_their_type_and_urls_and_unknown_types_are_refused()
    {
        var foreign = new Descriptor
        {
            MediaType = MediaTypes.DockerForeignLayerGzip,
            Digest = Digest.Parse("sha256:" + new string('a', 64)),
            Size = 5,
            Urls = ["https://example.invalid/layer"],
        };
        Assert.Equal(foreign with { Annotations = null }, ImageBuilder.ToOciLayer(foreign));

        var encrypted = foreign with { MediaType = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted", Urls = null };
        Assert.Equal(ErrorCodes.MediaTypeUnsupported, Assert.Throws<VddkException>(() => ImageBuilder.ToOciLayer(encrypted)).Code);
    }

    [Fact]
    public async Task The_same_inputs_give_the_same_bytes()
    {
        var (baseImage, layer) = await InputsAsync();
        var first = ImageBuilder.Build(baseImage, layer, Settings);
        var second = ImageBuilder.Build(baseImage, layer, Settings with { Labels = new Dictionary<string, string>(Settings.Labels.Reverse()) });
        Assert.Equal(first.ConfigBytes, second.ConfigBytes);
        Assert.Equal(first.ManifestBytes, second.ManifestBytes);
    }

    [Fact]
    public async Task A_base_whose_layer_count_differs_from_its_diff_ids_fails_with_VDDK2004()
    {
        var (baseImage, layer) = await InputsAsync(editConfig: c => c["rootfs"]!["diff_ids"]!.AsArray().RemoveAt(0));
        var ex = Assert.Throws<VddkException>(() => ImageBuilder.Build(baseImage, layer, Settings));
        Assert.Equal(ErrorCodes.ImageLayoutInvalid, ex.Code);
        Assert.Contains("2 layers", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckBase_refuses_what_Build_would_refuse_about_the_base_and_passes_an_intact_base()
    {
        var (good, _) = await InputsAsync();
        ImageBuilder.CheckBase(good);

        var (uneven, _) = await InputsAsync(editConfig: c => c["rootfs"]!["diff_ids"]!.AsArray().RemoveAt(0));
        Assert.Equal(ErrorCodes.ImageLayoutInvalid, Assert.Throws<VddkException>(() => ImageBuilder.CheckBase(uneven)).Code);

        var (noRootfs, _) = await InputsAsync(editConfig: c => c.Remove("rootfs"));
        Assert.Equal(ErrorCodes.ImageLayoutInvalid, Assert.Throws<VddkException>(() => ImageBuilder.CheckBase(noRootfs)).Code);

        var encrypted = good with
        {
            Manifest = good.Manifest with { Layers = [good.Layers[0] with { MediaType = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted" }, .. good.Layers.Skip(1)] },
        };
        Assert.Equal(ErrorCodes.MediaTypeUnsupported, Assert.Throws<VddkException>(() => ImageBuilder.CheckBase(encrypted)).Code);
    }

    [Fact]
    public async Task A_base_config_without_config_section_or_history_gets_them()
    {
        var (baseImage, layer) = await InputsAsync(editConfig: c => { c.Remove("config"); c.Remove("history"); });
        var config = JsonNode.Parse(ImageBuilder.Build(baseImage, layer, Settings).ConfigBytes)!.AsObject();
        Assert.Equal("1001", (string?)config["config"]!["User"]);
        Assert.Equal(NonEmptyHistory(config), config["rootfs"]!["diff_ids"]!.AsArray().Count);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("only-empty-layers")]
    [InlineData("one-entry-for-two-layers")]
    public async Task The_history_accounts_for_every_layer_even_when_the_base_history_does_not(string baseHistory)
    {
        // buildah (podman build FROM the image) refuses an image whose non-empty history entries and layers differ in
        // number: "history lists 1 non-empty layers, but we have 2 layers on disk".
        var (baseImage, layer) = await InputsAsync(editConfig: c =>
        {
            switch (baseHistory)
            {
                case "none": c.Remove("history"); break;
                case "only-empty-layers": c["history"] = new JsonArray(new JsonObject { ["created_by"] = "ENV A=1", ["empty_layer"] = true }); break;
                default: break; // the test layout's base: one entry, two layers
            }
        });
        var config = JsonNode.Parse(ImageBuilder.Build(baseImage, layer, Settings).ConfigBytes)!.AsObject();
        var history = config["history"]!.AsArray();

        Assert.Equal(3, config["rootfs"]!["diff_ids"]!.AsArray().Count);
        Assert.Equal(3, NonEmptyHistory(config));
        Assert.StartsWith("COPY vmware-vix-disklib-distrib", (string?)history[^1]!["created_by"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_consistent_base_history_with_empty_layer_entries_is_kept_as_it_is()
    {
        var entries = new JsonArray(
            new JsonObject { ["created_by"] = "layer 1" },
            new JsonObject { ["created_by"] = "ENV A=1", ["empty_layer"] = true },
            new JsonObject { ["created_by"] = "layer 2" });
        var (baseImage, layer) = await InputsAsync(editConfig: c => c["history"] = entries.DeepClone());
        var history = JsonNode.Parse(ImageBuilder.Build(baseImage, layer, Settings).ConfigBytes)!["history"]!.AsArray();

        Assert.Equal(4, history.Count);
        Assert.True(JsonNode.DeepEquals(entries, new JsonArray([.. history.Take(3).Select(h => h!.DeepClone())])));
    }

    private static int NonEmptyHistory(JsonObject config) =>
        config["history"]!.AsArray().Count(h => h!["empty_layer"] is not JsonValue v || !v.GetValue<bool>());
}
