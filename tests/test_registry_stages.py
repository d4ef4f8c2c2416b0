"""Backbone stages (``layers=``), name resolution through ``resolve_backbone``, cheap listing."""

import functools
import pickle

import pytest
import torch

import sktransfer
from sktransfer import BackboneSpec, get_spec, list_backbones, list_stages
from sktransfer._nn.pooling import pool_stage, pool_tokens
from sktransfer._nn.stage_outputs import fx_stage_outputs
from sktransfer.exceptions import BackboneConflictError, UnknownBackboneError
from sktransfer.plugins import get_plugin_manager


def stage_fn(spec, backbone, names):
    return (spec.stage_outputs or fx_stage_outputs)(backbone, names)


# --------------------------------------------------------------------------- stages per family
def test_resnet18_stages_and_last_stage_is_the_default_output():
    spec = get_spec("resnet18")
    assert list_stages("resnet18") == ["layer1", "layer2", "layer3", "layer4"]
    backbone = spec.build(pretrained=False).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outs = stage_fn(spec, backbone, spec.get_stages())(x)
        default = backbone(x)
    assert [tuple(o.shape) for o in outs] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]
    torch.testing.assert_close(pool_stage(outs[-1], None, None), default)


def test_stage_outputs_read_current_weights_and_follow_the_mode():
    spec = get_spec("resnet18")
    backbone = spec.build(pretrained=False)
    f = stage_fn(spec, backbone, ["layer4", "layer1"])  # order of names, not of the network
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        backbone.eval()
        before = f(x)
        assert [o.shape[1] for o in before] == [512, 64]
        torch.testing.assert_close(before[0].mean(dim=(2, 3)), backbone(x))
        backbone.layer4[1].conv2.weight.mul_(2.0)  # trained weights are what f reads
        after = f(x)
        torch.testing.assert_close(after[0].mean(dim=(2, 3)), backbone(x))
        assert not torch.allclose(after[0], before[0])
        torch.testing.assert_close(after[1], before[1])
        backbone.train()  # batch statistics now: f must use them too
        state = {k: v.clone() for k, v in backbone.state_dict().items()}
        in_train = f(x)[0].mean(dim=(2, 3))
        backbone.load_state_dict(state)  # undo the running-statistics update
        torch.testing.assert_close(in_train, backbone(x))
        assert not torch.allclose(in_train, after[0].mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "name, stages",
    [
        ("mobilenet_v3_small", [f"features.{i}" for i in range(13)]),
        ("efficientnet_b0", [f"features.{i}" for i in range(9)]),
        ("convnext_tiny", ["features.1", "features.3", "features.5", "features.7"]),
        ("vit_b_16", [f"encoder.layers.encoder_layer_{i}" for i in range(12)] + ["encoder.ln"]),
        ("mlp", []),
    ],
)
def test_builtin_stage_names(name, stages):
    assert list_stages(name) == stages


def test_builtin_stages_are_module_paths():
    import torchvision

    from sktransfer.backbones.torchvision import _ARCHS

    for arch in ("mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16"):
        with torch.device("meta"):
            model = torchvision.models.get_model(arch, weights=None)
        modules = dict(model.named_modules())
        assert all(stage in modules for stage in _ARCHS[arch][3]), arch


def test_minilm_hidden_states(sentences):
    from sktransfer.backbones.huggingface import MINILM_NAME, _stages, load_tokenizer

    spec = get_spec(MINILM_NAME)
    stages = spec.get_stages()
    assert stages == ["embeddings"] + [f"layer.{i}" for i in range(6)]
    assert _stages(MINILM_NAME) == stages  # the stated names match the AutoConfig
    backbone = spec.build(pretrained=True).eval()
    tokens = dict(load_tokenizer(MINILM_NAME)(sentences[0][:3], padding=True, return_tensors="pt"))
    f = spec.stage_outputs(backbone, ["layer.5", "embeddings", "layer.2"])
    f = pickle.loads(pickle.dumps(f))  # a plain object: pickles (with its own copy of the backbone)
    f.backbone = backbone
    with torch.no_grad():
        outs = f(**tokens)
        default = backbone(**tokens)
    n, t = tokens["input_ids"].shape
    assert [tuple(o.shape) for o in outs] == [(n, t, 384)] * 3
    mask = tokens["attention_mask"]
    torch.testing.assert_close(pool_stage(outs[0], mask, "mean"), pool_tokens(default, mask, "mean"))
    assert not torch.allclose(outs[1], outs[0])


def test_hf_feature_size_and_stages_come_from_autoconfig(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    spec = get_spec(str(tmp_path))
    assert spec.get_feature_dim() == 32
    assert spec.get_stages() == ["embeddings", "layer.0", "layer.1", "layer.2"]


def test_efficientnet_lite0_stages():
    import timm

    spec = get_spec("efficientnet_lite0")
    assert list_stages("efficientnet_lite0") == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"]
    backbone = spec.build(pretrained=True).eval()
    assert [info["module"] for info in backbone.feature_info] == spec.get_stages()
    f = spec.stage_outputs(backbone, ["blocks.6", "blocks.0", "blocks.2"])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outs = f(x)
        full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        full.load_state_dict(backbone.state_dict(), strict=False)
        reference = full.eval().forward_intermediates(x, intermediates_only=True)
    assert [tuple(o.shape) for o in outs] == [(2, 320, 2, 2), (2, 16, 32, 32), (2, 40, 8, 8)]
    torch.testing.assert_close(outs[0], reference[4])
    torch.testing.assert_close(outs[1], reference[0])
    restored = pickle.loads(pickle.dumps(f))
    assert restored.names == f.names and restored.indices == [0, 2, 4]
    with pytest.raises(ValueError, match="no stage 'blocks.3'.*blocks.0"):
        spec.stage_outputs(backbone, ["blocks.3"])


def test_timm_stages_are_found_without_weights(monkeypatch):
    import sktransfer_timm.plugin as plugin

    spec = get_spec("timm/resnet18.a1_in1k")
    assert callable(spec.stages)
    with monkeypatch.context() as patch:
        patch.setattr(plugin, "build_timm", None)  # listing stages never builds the backbone
        patch.setattr(plugin, "find_cached_weights", None)
        assert spec.get_stages() == ["act1", "layer1", "layer2", "layer3", "layer4"]
    vit = get_spec("timm/test_vit")
    backbone = plugin.build_timm("test_vit", pretrained=False).eval()
    stages = vit.get_stages()
    outs = vit.stage_outputs(backbone, stages[-1:])(torch.randn(2, 3, 160, 160))
    assert len(outs) == 1 and outs[0].shape[0] == 2 and outs[0].dim() == 4


def test_example_cnn_stages():
    spec = get_spec("example_tinycnn")
    assert list_stages("example_tinycnn") == ["0", "1", "2"]
    backbone = spec.build(pretrained=False).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        outs = stage_fn(spec, backbone, spec.get_stages())(x)
        default = backbone(x)
    assert [tuple(o.shape) for o in outs] == [(2, 16, 16, 16), (2, 32, 8, 8), (2, 32, 4, 4)]
    torch.testing.assert_close(pool_stage(outs[-1], None, None), default)


# --------------------------------------------------------------------------- text preprocessing
def test_text_specs_give_their_tokenizer_and_config():
    from sktransfer.backbones.huggingface import MINILM_NAME, load_tokenizer, minilm_path

    for spec in (get_spec(MINILM_NAME), get_spec(str(minilm_path()))):
        prep = pickle.loads(pickle.dumps(spec.preprocessing))  # specs travel inside fitted estimators
        tokenizer = prep.load_tokenizer()
        assert type(tokenizer) is type(load_tokenizer(MINILM_NAME))
        assert tokenizer.name_or_path == load_tokenizer(MINILM_NAME).name_or_path
        assert prep.model_config().max_position_embeddings == 512


def test_text_preprocessing_pickled_before_the_loaders_unpickles_without_them():
    from sktransfer import TextPreprocessing

    old = TextPreprocessing(tokenizer="some/dir", max_length=64)
    for key in ("load_tokenizer", "model_config"):  # what a pickle from before these fields holds
        del old.__dict__[key]
    spec = BackboneSpec(name="old", modality="text", build=functools.partial(build_zoo_mlp, 4), feature_dim=4,
                        preprocessing=old)
    loaded = pickle.loads(pickle.dumps(spec)).preprocessing
    assert "load_tokenizer" not in loaded.__dict__
    assert loaded.load_tokenizer is None and loaded.model_config is None
    assert loaded == TextPreprocessing(tokenizer="some/dir", max_length=64)
    assert hash(loaded) == hash(TextPreprocessing(tokenizer="some/dir", max_length=64))


def test_a_text_spec_without_a_tokenizer_is_a_clear_error():
    from sktransfer import TextPreprocessing
    from sktransfer._inputs import adapter_class

    spec = BackboneSpec(name="notok", modality="text", build=functools.partial(build_zoo_mlp, 4), feature_dim=4,
                        preprocessing=TextPreprocessing(tokenizer="somewhere"), plugin="someplugin")
    with pytest.raises(ValueError, match=r"'notok' \(plugin someplugin\) gives no tokenizer.*load_tokenizer=None"):
        adapter_class("text").from_params(spec, {})
    assert "load_tokenizer=None" in adapter_class("text").preprocessing_problem(spec)


def test_a_reused_text_adapter_checks_max_length_against_the_spec_config():
    from sktransfer._inputs import adapter_class

    adapter = adapter_class("text").from_params(get_spec("all-MiniLM-L6-v2"), {})
    with pytest.raises(ValueError, match="max_length=513 .* 512 tokens"):
        adapter.inherit({"max_length": 513})
    assert adapter.inherit({"max_length": 512}).collate_fn.tokenizer is adapter.collate_fn.tokenizer
    del adapter.__dict__["model_config"]  # an adapter pickled before it kept the spec's model_config
    with pytest.raises(ValueError, match="max_length=513 .* 512 tokens"):
        adapter.inherit({"max_length": 513})


def test_the_core_never_imports_a_builtin_plugin():
    import ast
    from pathlib import Path

    package = Path(sktransfer.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.parent.name == "backbones":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            if any(n == "sktransfer.backbones" or n.startswith("sktransfer.backbones.") for n in names):
                offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []


# --------------------------------------------------------------------------- resolve_backbone
def test_hugging_face_directory_resolves_through_the_hook():
    from sktransfer.backbones.huggingface import minilm_path, resolve_backbone

    spec = get_spec(str(minilm_path()))
    assert spec.modality == "text" and spec.plugin == "sktransfer.backbones.huggingface"
    assert spec.distribution == "sktransfer"
    assert resolve_backbone(name="resnet18") is None
    assert get_spec("hf:someone/some-model").plugin == "sktransfer.backbones.huggingface"
    # The hook is firstresult: plugins (and users) may call it directly too.
    assert get_plugin_manager().hook.resolve_backbone(name="timm/resnet18").name == "timm/resnet18"
    assert get_plugin_manager().hook.resolve_backbone(name="resnet19") is None


def build_zoo_mlp(width, pretrained=False):
    from sktransfer.backbones.tabular import build_mlp

    return build_mlp(width)


class ZooPlugin:
    """Claims ``zoo/<width>`` without registering it, and lists three of them."""

    @sktransfer.hookimpl
    def resolve_backbone(self, name):
        prefix, _, width = name.partition("/")
        if prefix != "zoo" or not width.isdigit():
            return None
        return BackboneSpec(
            name=name, modality="tabular", build=functools.partial(build_zoo_mlp, int(width)), feature_dim=int(width)
        )

    @sktransfer.hookimpl
    def list_backbone_names(self):
        return [("zoo/8", "tabular"), ("zoo/16", "tabular"), ("zoo/32", "tabular")]


@pytest.fixture
def register(monkeypatch):
    """Register plugin objects on the live plugin manager for one test."""
    pm = get_plugin_manager()
    added = []

    def add(plugin, name):
        pm.register(plugin, name=name)
        added.append(plugin)

    yield add
    for plugin in added:
        pm.unregister(plugin)


def test_a_plugin_claims_names_through_resolve_backbone(register):
    register(ZooPlugin(), "zooplug")
    spec = get_spec("zoo/24")
    assert spec.plugin == "zooplug" and spec.get_feature_dim() == 24
    assert spec.build(pretrained=False)[2].out_features == 24
    assert list_backbones(pattern="zoo/*") == ["zoo/16", "zoo/32", "zoo/8"]
    assert "zoo/8" in list_backbones("tabular") and "zoo/8" not in list_backbones("image")
    with pytest.raises(UnknownBackboneError, match="Did you mean: zoo/8"):
        get_spec("zoo/8x")


class HubThief:
    @sktransfer.hookimpl
    def resolve_backbone(self, name):
        if not name.startswith("hf:"):
            return None
        return BackboneSpec(name=name, modality="tabular", build=functools.partial(build_zoo_mlp, 4), feature_dim=4)

    @sktransfer.hookimpl
    def list_backbone_names(self):
        return [("resnet18", "image")]


def test_clashes_name_both_plugins(register):
    register(HubThief(), "thief")
    with pytest.raises(BackboneConflictError, match=r"'hf:a/b' is registered twice") as info:
        get_spec("hf:a/b")
    assert "'sktransfer.backbones.huggingface'" in str(info.value) and "'thief'" in str(info.value)
    with pytest.raises(BackboneConflictError, match=r"'resnet18'.*sktransfer.backbones.torchvision.*thief"):
        list_backbones()
    assert get_spec("resnet18").plugin == "sktransfer.backbones.torchvision"  # registered names come first


def test_a_failing_resolver_is_skipped_with_a_warning(register):
    class Broken:
        @sktransfer.hookimpl
        def resolve_backbone(self, name):
            raise RuntimeError("boom")

    register(Broken(), "brokenresolver")
    with pytest.warns(RuntimeWarning, match="'brokenresolver'.*resolve_backbone.*boom"):
        assert get_spec("hf:x/y").plugin == "sktransfer.backbones.huggingface"


# --------------------------------------------------------------------------- listing
def test_list_backbones_pattern():
    assert list_backbones(pattern="resnet*") == ["resnet18", "resnet34", "resnet50"]
    assert list_backbones("image", pattern="mobilenet_v3_*") == ["mobilenet_v3_large", "mobilenet_v3_small"]
    assert list_backbones("image", pattern="*efficientnet_lite0") == [
        "efficientnet_lite0", "timm/efficientnet_lite0", "timm/tf_efficientnet_lite0"
    ]
    timm_resnets = list_backbones(pattern="timm/resnet50*")
    assert "timm/resnet50" in timm_resnets and "timm/resnet50.a1_in1k" in timm_resnets
    assert all(n.startswith("timm/resnet50") for n in timm_resnets)
    assert list_backbones("text", pattern="timm/*") == []
    assert list_backbones(pattern="RESNET18") == []  # case-sensitive on every platform
    assert len(list_backbones()) > 3000


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"modality": "audio"}, ValueError, "modality must be one of"),
        ({"pattern": ""}, ValueError, "pattern is empty"),
        ({"pattern": ["resnet*"]}, TypeError, "pattern must be a str"),
    ],
)
def test_list_backbones_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        list_backbones(**kwargs)


def test_looking_up_a_name_does_not_list_timm(monkeypatch):
    import sktransfer_timm.plugin as plugin

    from sktransfer._spec import registry as _registry

    def fail(*args, **kwargs):
        raise AssertionError("a lookup must not list or build every timm spec")

    monkeypatch.setattr(plugin, "model_names", fail)
    monkeypatch.setattr(_registry, "_cache", {"key": None, "specs": None, "listed": None})
    assert get_spec("efficientnet_lite0").plugin == "timm"
    assert get_spec("resnet18").plugin == "sktransfer.backbones.torchvision"
    monkeypatch.setattr(plugin, "timm_spec", fail)
    assert get_spec("efficientnet_lite0").name == "efficientnet_lite0"
    assert plugin.register_backbones()[0].name == "efficientnet_lite0"
    assert len(plugin.register_backbones()) == 1


def test_unknown_timm_names_are_not_claimed():
    for name in ("timm/not_a_model", "timm/resnet50.no_such_tag", "timm/"):
        with pytest.raises(UnknownBackboneError) as info:
            get_spec(name)
        assert "not installed" not in str(info.value)


def test_list_stages_is_exported():
    assert "list_stages" in sktransfer.__all__ and sktransfer.__all__ == sorted(sktransfer.__all__)
    with pytest.raises(UnknownBackboneError, match="Did you mean: resnet18"):
        list_stages("resnet19")


# --------------------------------------------------------------------------- CLI
def test_cli_details(capsys):
    from sktransfer.__main__ import main

    assert main(["backbones", "--details", "efficientnet_lite0"]) == 0
    out = capsys.readouterr().out
    assert "modality       image" in out and "timm (sktransfer-timm)" in out
    assert "features       1280" in out and "224px (resize 256, bicubic)" in out
    assert "stages         blocks.0, blocks.1, blocks.2, blocks.4, blocks.6" in out
    assert "blocks         conv_stem, bn1, blocks.0" in out
    assert "on this machine: yes" in out
    assert main(["backbones", "--details", "mlp"]) == 0
    out = capsys.readouterr().out
    assert "none (final features only)" in out and "trains from scratch" in out
    assert main(["backbones", "--details", "all-MiniLM-L6-v2"]) == 0
    assert "stages         embeddings, layer.0" in capsys.readouterr().out


def test_cli_details_unknown_name(capsys):
    from sktransfer.__main__ import main

    assert main(["backbones", "--details", "efficientnet_lite"]) == 2
    err = capsys.readouterr().err
    assert "Unknown backbone 'efficientnet_lite'" in err and "Did you mean: efficientnet_lite0" in err


def test_cli_pattern_builds_only_printed_specs(capsys, monkeypatch):
    from sktransfer.__main__ import main
    from sktransfer._spec import registry as _registry

    built = []
    real = _registry.get_spec
    monkeypatch.setattr(_registry, "get_spec", lambda name: built.append(name) or real(name))
    assert main(["backbones", "--all", "--pattern", "timm/convnext_atto*"]) == 0
    out = capsys.readouterr().out
    assert "timm/convnext_atto.d2_in1k" in out and "resnet18" not in out
    assert built and all(name.startswith("timm/convnext_atto") for name in built)
    assert f"{len(built)} backbones" in out
