"""Tests of the sktransfer-timm plugin itself (the entry-point side is in sktransfer's tests/)."""

import os
import pickle
import time

import numpy as np
import pytest
import sktransfer_timm.plugin as plugin
import torch

from sktransfer import FINAL_FEATURES, get_spec
from sktransfer.exceptions import WeightsUnavailableError
from sktransfer.testing import check_backbone_spec, check_plugin

BUILDING_CLASSES = {698: "palace", 497: "church", 663: "monastery", 442: "bell cote"}


def _eval_tensor(image, prep):
    """Resize the shorter side to ``resize_size`` (bicubic), center-crop, normalise."""
    from PIL import Image

    img = Image.fromarray(image)
    w, h = img.size
    scale = prep.resize_size / min(w, h)
    img = img.resize((round(w * scale), round(h * scale)), Image.BICUBIC)
    w, h = img.size
    left, top = (w - prep.input_size) // 2, (h - prep.input_size) // 2
    img = img.crop((left, top, left + prep.input_size, top + prep.input_size))
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    x = (x - torch.tensor(prep.mean).view(3, 1, 1)) / torch.tensor(prep.std).view(3, 1, 1)
    return x.unsqueeze(0)


def test_lite0_spec():
    spec = plugin.lite0_spec()
    assert spec.name == "efficientnet_lite0" and spec.modality == "image"
    assert spec.get_feature_dim() == 1280
    assert spec.available_offline()
    prep = spec.preprocessing
    assert (prep.input_size, prep.resize_size, prep.interpolation) == (224, 256, "bicubic")
    assert prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.5, 0.5, 0.5)
    assert spec.blocks[:2] == ("conv_stem", "bn1") and spec.blocks[-2:] == ("conv_head", "bn2")


@pytest.mark.slow
def test_lite0_predicts_a_building_on_china_jpg():
    """The offline weights are mapped right: china.jpg's top-5 holds a building class."""
    from sklearn.datasets import load_sample_image
    from sktransfer_timm._lite0_weights import load_lite0_state_dict

    spec = get_spec("efficientnet_lite0")
    x = _eval_tensor(load_sample_image("china.jpg"), spec.preprocessing)
    backbone = spec.build(pretrained=True).eval()
    state = load_lite0_state_dict()
    with torch.no_grad():
        features = backbone(x)
        logits = features @ state["classifier.weight"].T + state["classifier.bias"]
        full = plugin.build_lite0(pretrained=True, with_classifier=True).eval()(x)
    torch.testing.assert_close(logits, full, rtol=1e-4, atol=1e-4)
    top5 = logits[0].topk(5).indices.tolist()
    assert set(top5) & set(BUILDING_CLASSES), f"top-5 {top5} has no building class {BUILDING_CLASSES}"


def test_listing_builds_nothing_and_is_fast(monkeypatch):
    import timm

    def fail(*args, **kwargs):
        raise AssertionError("listing must not build a model or a spec")

    plugin.list_backbone_names()  # warm timm's import
    monkeypatch.setattr(timm, "create_model", fail)
    monkeypatch.setattr(plugin, "timm_spec", fail)
    start = time.perf_counter()
    registered = plugin.register_backbones()
    listed = plugin.list_backbone_names()
    elapsed = time.perf_counter() - start
    assert [s.name for s in registered] == ["efficientnet_lite0"]  # the only spec built eagerly
    names = [name for name, _ in listed]
    assert len(names) == len(set(names)) > 1000
    assert {modality for _, modality in listed} == {"image"}
    assert {"timm/resnet50", "timm/resnet50.a1_in1k", "timm/vit_base_patch16_224"} <= set(names)
    assert all(n.startswith("timm/") for n in names)
    assert elapsed < 1, f"listing took {elapsed:.1f}s"


def test_resolve_backbone_claims_every_listed_name_and_only_those():
    names = [name for name, _ in plugin.list_backbone_names()]
    for name in names[:: len(names) // 40] + ["timm/resnet50.a1_in1k", "timm/test_vit"]:
        spec = plugin.resolve_backbone(name=name)
        assert spec is not None and spec.name == name and spec.modality == "image", name
    for name in ("efficientnet_lite0", "resnet18", "timm/no_such_model", "timm/resnet50.no_such_tag", "timm/"):
        assert plugin.resolve_backbone(name=name) is None, name


def test_stages():
    import timm

    assert plugin.LITE0_STAGES == ("blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6")
    assert plugin.timm_stages(plugin.LITE0_ARCH) == list(plugin.LITE0_STAGES)  # what timm's feature_info says
    assert plugin.lite0_spec().get_stages() == list(plugin.LITE0_STAGES)
    assert plugin.timm_stages("resnet50.a1_in1k") == ["act1", "layer1", "layer2", "layer3", "layer4"]
    assert plugin.timm_stages("vit_tiny_patch16_224") == [f"blocks.{i}" for i in range(12)]
    model = timm.create_model("test_efficientnet", num_classes=0).eval()
    stages = plugin.timm_stages("test_efficientnet")
    f = plugin.timm_stage_outputs(model, stages[::-1])
    with torch.no_grad():
        outs = f(torch.randn(2, 3, 64, 64))
    expected = model.forward_intermediates(torch.randn(2, 3, 64, 64), intermediates_only=True)
    assert [o.shape for o in outs] == [e.shape for e in expected[::-1]]
    assert pickle.loads(pickle.dumps(f)).names == stages[::-1]


@pytest.mark.parametrize("arch", ["test_efficientnet", "test_vit"])
def test_final_features_come_from_the_same_pass_as_the_stages(arch):
    import timm

    assert plugin.timm_stage_outputs.reads_final_features  # sktransfer then asks it for "final" too
    model = timm.create_model(arch, num_classes=0).eval()
    stages = plugin.timm_stages(arch)
    x = torch.randn(2, 3, *model.pretrained_cfg["input_size"][1:])
    with torch.no_grad():
        final, last = plugin.timm_stage_outputs(model, [FINAL_FEATURES, stages[-1]])(x)
        (alone,) = plugin.timm_stage_outputs(model, [FINAL_FEATURES])(x)
        torch.testing.assert_close(final, model(x))  # exactly what forward returns
        torch.testing.assert_close(alone, model(x))
        torch.testing.assert_close(last, model.forward_intermediates(x, indices=[len(stages) - 1],
                                                                     intermediates_only=True)[0])


def test_timm_preprocessing_comes_from_pretrained_cfg():
    spec = plugin.timm_spec("resnet50.a1_in1k")
    assert spec.name == "timm/resnet50.a1_in1k"
    prep = spec.preprocessing
    assert prep.input_size == 224 and prep.resize_size == round(224 / 0.95)
    assert prep.interpolation == "bicubic" and not prep.fixed_size
    vit = plugin.timm_spec("vit_base_patch16_224")
    assert vit.preprocessing.fixed_size and vit.preprocessing.mean == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    "name, dim", [("resnet18", 512), ("resnet50.a1_in1k", 2048), ("efficientnet_b0", 1280), ("mobilenetv3_large_100", 1280)]
)
def test_feature_dim(name, dim):
    assert plugin.timm_spec(name).get_feature_dim() == dim
    assert plugin.meta_feature_dim(name.split(".")[0]) == dim


def test_feature_dim_table_matches_meta_build():
    table = plugin._feature_dim_table()
    if not table:
        pytest.skip("no feature-size table for this timm version; sizes come from meta builds")
    for arch in ("convnext_atto", "vit_tiny_patch16_224", "test_vit", "mobilenetv3_small_050", "regnetx_002"):
        assert table[arch] == plugin.meta_feature_dim.__wrapped__(arch), arch


def test_blocks_of_timm_models():
    import timm

    with torch.device("meta"):
        effnet = timm.create_model("efficientnet_b0", num_classes=0)
        resnet = timm.create_model("resnet18", num_classes=0)
    assert plugin.timm_blocks(effnet) == ["conv_stem", "bn1"] + [f"blocks.{i}" for i in range(7)] + ["conv_head", "bn2"]
    assert plugin.timm_blocks(resnet) == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def test_missing_weights_raise_with_advice(empty_caches):
    spec = plugin.timm_spec("resnet18.a1_in1k")
    assert spec.available_offline() is False
    with pytest.raises(WeightsUnavailableError) as info:
        spec.build(pretrained=True)
    message = str(info.value)
    assert "timm/resnet18.a1_in1k" in message and "timm/resnet18.a1_in1k/model.safetensors" in message
    assert "pretrained=False" in message and "huggingface-cli download" in message


def test_weights_from_the_hf_cache_are_used(empty_caches):
    """A checkpoint in the HF cache layout is found and loaded, without the network."""
    from safetensors.torch import save_file

    name = "test_resnet.r160_in1k"
    cfg = plugin.timm_spec(name)
    hub_id = __import__("timm").get_pretrained_cfg(name).hf_hub_id
    reference = __import__("timm").create_model(name, pretrained=False)
    repo = empty_caches / ("models--" + hub_id.replace("/", "--"))
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(snapshot / "model.safetensors"))

    assert cfg.available_offline() is True
    model = cfg.build(pretrained=True)
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], msg=key)


def test_specs_pickle_and_still_build():
    for name in ("efficientnet_lite0", "timm/test_efficientnet"):
        spec = get_spec(name)
        restored = pickle.loads(pickle.dumps(spec))
        assert restored.name == spec.name and restored.available_offline() == spec.available_offline()
        assert isinstance(restored.build(pretrained=False), torch.nn.Module)


def test_testing_kit_on_the_plugin():
    assert [s.name for s in check_plugin(plugin, image_size=64)] == ["efficientnet_lite0"]
    for name in ("timm/test_vit", "timm/test_efficientnet", "timm/test_convnext"):
        check_backbone_spec(name, image_size=64)
    check_backbone_spec("efficientnet_lite0", pretrained=True, image_size=64, trainable_blocks=3)


def test_never_asks_timm_for_the_network(monkeypatch, empty_caches):
    """pretrained=True in timm is only ever reached with a local file."""
    import timm

    calls = []
    real = timm.create_model

    def spy(name, pretrained=False, **kwargs):
        calls.append((pretrained, kwargs.get("pretrained_cfg_overlay")))
        return real(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(timm, "create_model", spy)
    with pytest.raises(WeightsUnavailableError):
        plugin.build_timm("test_vit.r160_in1k", pretrained=True)
    plugin.build_timm("test_vit.r160_in1k", pretrained=False)
    plugin.build_lite0(pretrained=True)
    assert all(not pretrained or os.path.isfile(overlay["file"]) for pretrained, overlay in calls)


def test_a_model_file_never_loads_pickled_timm_weights(monkeypatch, tmp_path):
    from pathlib import Path

    import pytest

    from sktransfer._spec.model_files import reading_model_file
    from sktransfer.exceptions import ModelFileError
    from sktransfer_timm import plugin

    pickled = tmp_path / "pytorch_model.bin"
    pickled.write_bytes(b"not to be unpickled")
    monkeypatch.setattr(plugin, "find_cached_weights", lambda name: str(pickled))
    created = []
    monkeypatch.setattr("timm.create_model", lambda *a, **k: created.append(a) or "model")
    with reading_model_file(Path("saved/config.json")), pytest.raises(ModelFileError, match="not safetensors"):
        plugin.build_timm("resnet18", pretrained=True)
    assert not created  # refused before timm could torch.load the pickle
    assert plugin.build_timm("resnet18", pretrained=True) == "model"  # outside sktransfer.load: timm's own rules
