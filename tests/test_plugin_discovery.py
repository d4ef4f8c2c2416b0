"""Backbones found through pluggy: built-ins, entry points, broken plugins, name clashes."""

import textwrap
import warnings

import pytest

import sktransfer
from sktransfer import get_spec
from sktransfer.exceptions import BackboneConflictError, UnknownBackboneError
from sktransfer.plugins import (
    DISABLE_AUTOLOAD_ENV,
    get_plugin_manager,
    reset_plugin_manager,
)

BUILTINS = {"resnet18", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
            "convnext_tiny", "vit_b_16", "all-MiniLM-L6-v2", "mlp"}


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A plugin manager rebuilt for this test, and again after it."""
    reset_plugin_manager()
    yield monkeypatch
    monkeypatch.undo()
    reset_plugin_manager()


def make_distribution(root, dist, module, source):
    """A real installed distribution (dist-info + module) with an ``sktransfer`` entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[sktransfer]\n{module} = {module}\n")


def test_builtins_are_listed():
    names = set(sktransfer.list_backbones())
    assert BUILTINS <= names
    assert sktransfer.list_backbones("text") == [n for n in sorted(names) if get_spec(n).modality == "text"]
    spec = get_spec("resnet18")
    assert spec.plugin == "sktransfer.backbones.torchvision" and spec.distribution == "sktransfer"
    assert spec.preprocessing.input_size == 224 and spec.preprocessing.resize_size == 256


def test_plugin_manager_is_lazy_and_cached():
    assert get_plugin_manager() is get_plugin_manager()


def test_entry_point_plugin_is_discovered(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-goodplug", "goodplug", """
        import functools
        from sktransfer import hookimpl
        from sktransfer import BackboneSpec
        from sktransfer.backbones.tabular import build_mlp

        @hookimpl
        def register_backbones():
            return [BackboneSpec(name="wide_mlp", modality="tabular",
                                 build=functools.partial(build_mlp, 256), feature_dim=256, blocks=("0", "2"))]
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    assert "wide_mlp" in sktransfer.list_backbones()
    spec = get_spec("wide_mlp")
    assert spec.plugin == "goodplug" and spec.distribution == "sktransfer-goodplug"
    import numpy as np

    X = np.random.RandomState(0).normal(size=(30, 4))
    clf = sktransfer.TransferClassifier("wide_mlp", max_epochs=2).fit(X, X[:, 0] > 0)
    assert clf.net_.module_.head.in_features == 256


def test_autoload_can_be_disabled(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-goodplug2", "goodplug2", """
        from sktransfer import hookimpl
        @hookimpl
        def register_backbones():
            raise AssertionError("must not be called")
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    fresh_plugins.setenv(DISABLE_AUTOLOAD_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        names = set(sktransfer.list_backbones())
    assert BUILTINS <= names
    assert get_plugin_manager().get_plugin("goodplug2") is None


def test_broken_plugin_is_skipped_with_a_warning(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-brokenplug", "brokenplug", """
        raise ImportError("needs a library that is not installed")
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match=r"'brokenplug' \(sktransfer-brokenplug.*failed to import.*not installed"):
        names = set(sktransfer.list_backbones())
    assert BUILTINS <= names  # everything else keeps working


def test_plugin_whose_hook_fails_is_skipped(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-failhook", "failhook", """
        from sktransfer import hookimpl
        @hookimpl
        def register_backbones():
            return ["not a spec"]
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="'failhook'.*not BackboneSpec"):
        names = set(sktransfer.list_backbones())
    assert BUILTINS <= names


def test_two_plugins_claiming_one_name_are_both_named(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-clashplug", "clashplug", """
        import functools
        from sktransfer import hookimpl
        from sktransfer import BackboneSpec
        from sktransfer.backbones.tabular import build_mlp

        @hookimpl
        def register_backbones():
            return [BackboneSpec(name="resnet18", modality="tabular",
                                 build=functools.partial(build_mlp, 8), feature_dim=8)]
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    with pytest.raises(BackboneConflictError) as info:
        sktransfer.list_backbones()
    message = str(info.value)
    assert "'resnet18'" in message
    assert "sktransfer.backbones.torchvision" in message and "clashplug" in message
    assert "sktransfer-clashplug" in message


def test_entry_point_plugin_resolves_names_on_demand(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-lazyplug", "lazyplug", """
        import functools
        from sktransfer import hookimpl
        from sktransfer import BackboneSpec
        from sktransfer.backbones.tabular import build_mlp

        @hookimpl
        def resolve_backbone(name):
            if name.startswith("lazy/") and name[5:].isdigit():
                width = int(name[5:])
                return BackboneSpec(name=name, modality="tabular",
                                    build=functools.partial(build_mlp, width), feature_dim=width)

        @hookimpl
        def list_backbone_names():
            return [("lazy/64", "tabular"), ("lazy/128", "tabular")]
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    assert sktransfer.list_backbones(pattern="lazy/*") == ["lazy/128", "lazy/64"]
    spec = get_spec("lazy/64")
    assert spec.plugin == "lazyplug" and spec.distribution == "sktransfer-lazyplug"
    assert get_spec("lazy/7").get_feature_dim() == 7  # claimed without being listed
    with pytest.raises(UnknownBackboneError, match="Did you mean: lazy/64"):
        get_spec("lazy/64x")


def test_listed_name_clashing_with_a_registered_one_names_both(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-listclash", "listclash", """
        from sktransfer import hookimpl

        @hookimpl
        def list_backbone_names():
            return [("mlp", "tabular")]
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    assert get_spec("mlp").plugin == "sktransfer.backbones.tabular"  # a lookup lists nothing
    with pytest.raises(BackboneConflictError) as info:
        sktransfer.list_backbones()
    message = str(info.value)
    assert "'mlp'" in message and "sktransfer.backbones.tabular" in message
    assert "listclash" in message and "sktransfer-listclash" in message


def test_plugin_whose_listing_fails_is_skipped(tmp_path, fresh_plugins):
    make_distribution(tmp_path, "sktransfer-faillist", "faillist", """
        from sktransfer import hookimpl

        @hookimpl
        def list_backbone_names():
            return [("x", "audio")]
    """)
    fresh_plugins.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="'faillist'.*list_backbone_names.*modality"):
        names = set(sktransfer.list_backbones())
    assert BUILTINS <= names and "x" not in names


def test_unknown_name_suggests_and_points_to_missing_plugin(fresh_plugins):
    fresh_plugins.setenv(DISABLE_AUTOLOAD_ENV, "1")
    with pytest.raises(UnknownBackboneError, match="Did you mean: mobilenet_v3_small"):
        get_spec("mobilenet_v3_smal")
    with pytest.raises(UnknownBackboneError, match="sktransfer-timm.*pip install"):
        get_spec("timm/convnext_nano")


def test_hugging_face_directory_resolves_to_a_text_backbone():
    from sktransfer.backbones.huggingface import minilm_path

    spec = get_spec(str(minilm_path()))
    assert spec.modality == "text" and spec.get_feature_dim() == 384 and spec.available_offline()


def test_missing_hub_weights_give_advice_not_a_network_error():
    from sktransfer.exceptions import WeightsUnavailableError

    spec = get_spec("hf:nobody/no-such-model")
    assert not spec.available_offline()
    with pytest.raises(WeightsUnavailableError, match="nobody/no-such-model.*not on this machine.*save_pretrained"):
        spec.build(pretrained=True)


def test_missing_torchvision_weights_give_advice(monkeypatch, tmp_path):
    import torch

    from sktransfer.exceptions import WeightsUnavailableError

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    spec = get_spec("resnet18")
    assert not spec.available_offline()
    with pytest.raises(WeightsUnavailableError, match=r"'resnet18'.*resnet18-f37072fd\.pth.*pretrained=False"):
        spec.build(pretrained=True)
    assert spec.build(pretrained=False) is not None


def test_cached_torchvision_weights_are_loaded(monkeypatch, tmp_path):
    import torch
    import torchvision

    model = torchvision.models.resnet18(weights=None)
    (tmp_path / "checkpoints").mkdir()
    torch.save(model.state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    spec = get_spec("resnet18")
    assert spec.available_offline()
    loaded = spec.build(pretrained=True)
    torch.testing.assert_close(loaded.conv1.weight, model.conv1.weight)
