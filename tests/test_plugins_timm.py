"""sktransfer-timm through entry-point discovery (CI installs the plugin: these fail, not skip, without it)."""

import numpy as np
import pytest

import sktransfer
from sktransfer import TransferClassifier, get_spec
from sktransfer.exceptions import UnknownBackboneError
from sktransfer.plugins import DISABLE_AUTOLOAD_ENV, reset_plugin_manager


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    images = np.repeat(X.reshape(-1, 8, 8, 1) / 16.0, 3, axis=3).astype(np.float32)
    idx = np.concatenate([np.flatnonzero(y == c)[:10] for c in (0, 1, 7, 8)])  # 40 images, 4 classes
    return images[idx], y[idx]


def test_timm_backbones_are_discovered():
    names = sktransfer.list_backbones("image")
    assert "efficientnet_lite0" in names
    assert {"timm/resnet18", "timm/efficientnet_b0", "timm/vit_base_patch16_224"} <= set(names)
    assert "resnet18" in names  # the built-in torchvision one is still there, unprefixed
    for name in ("efficientnet_lite0", "timm/resnet18"):
        spec = get_spec(name)
        assert spec.plugin == "timm" and spec.distribution == "sktransfer-timm"
    assert get_spec("resnet18").distribution == "sktransfer"
    assert get_spec("efficientnet_lite0").available_offline()
    from sktransfer._spec.registry import _all_specs

    # Only efficientnet_lite0 is registered eagerly; timm/... are resolved when looked up.
    assert sorted(n for n, s in _all_specs().items() if s.plugin == "timm") == ["efficientnet_lite0"]
    assert sktransfer.list_stages("timm/resnet18") == ["act1", "layer1", "layer2", "layer3", "layer4"]


def test_timm_name_that_timm_does_not_know_is_unknown():
    with pytest.raises(UnknownBackboneError, match="Unknown backbone 'timm/resnet18.nope'.*Did you mean: timm/resnet18") as info:
        get_spec("timm/resnet18.nope")
    assert "not installed" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["partial", "head"])
def test_fine_tunes_efficientnet_lite0_offline(digits, strategy):
    X, y = digits
    clf = TransferClassifier(
        "efficientnet_lite0", strategy=strategy, trainable_blocks=2, image_size=32, max_epochs=2,
        batch_size=20, random_state=0,
    )
    clf.fit(X, y)
    assert clf.spec_.name == "efficientnet_lite0"
    assert list(clf.classes_) == [0, 1, 7, 8]
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 4) and np.allclose(proba.sum(1), 1, atol=1e-5)
    if strategy == "partial":
        module = clf.net_.module_
        trainable = {n.split(".")[1] + "." + n.split(".")[2] if n.startswith("backbone.blocks") else n.split(".")[1]
                     for n, p in module.named_parameters() if p.requires_grad and n.startswith("backbone.")}
        assert trainable == {"conv_head", "bn2"}


@pytest.mark.slow
def test_grid_search_over_backbones(digits):
    from sklearn.model_selection import GridSearchCV

    X, y = digits
    grid = [
        {"backbone": ["resnet18"], "pretrained": [False]},  # torchvision weights aren't cached here
        {"backbone": ["efficientnet_lite0"]},
    ]
    est = TransferClassifier("mlp", strategy="head", image_size=32, max_epochs=2, batch_size=20, random_state=0)
    search = GridSearchCV(est, grid, cv=2, error_score="raise").fit(X, y)
    assert [p["backbone"] for p in search.cv_results_["params"]] == ["resnet18", "efficientnet_lite0"]
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.predict(X).shape == (40,)


@pytest.fixture
def without_entry_points(monkeypatch):
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    reset_plugin_manager()
    yield
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    reset_plugin_manager()


def test_without_the_plugin_names_point_to_it(without_entry_points):
    assert "efficientnet_lite0" not in sktransfer.list_backbones()
    assert "resnet18" in sktransfer.list_backbones()
    for name in ("efficientnet_lite0", "timm/resnet50"):
        with pytest.raises(UnknownBackboneError, match="sktransfer-timm"):
            get_spec(name)


def test_plugin_comes_back_after_reset():
    reset_plugin_manager()
    assert get_spec("efficientnet_lite0").plugin == "timm"


@pytest.mark.slow
def test_default_augmentation_with_a_bicubic_backbone(digits):
    """efficientnet_lite0 resizes bicubic; TrivialAugmentWide on tensors must still work."""
    X, y = digits
    assert get_spec("efficientnet_lite0").preprocessing.interpolation == "bicubic"
    clf = TransferClassifier("efficientnet_lite0", augment="default", image_size=32, max_epochs=1, random_state=0)
    clf.fit(X, y)
    assert np.isfinite(clf.net_.history[-1, "train_loss"])
