"""Small image data: ``max_epochs="auto"`` keeps a pretrained image body as it is and solves
the head on augmented views of the photos (``sktransfer._training.budget.small_data_views``)."""

import numpy as np
import pytest
import torch

import sktransfer
from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._report.settings import settings_rows
from sktransfer._training.budget import AUTO_HEAD_EPOCHS, SMALL_DATA_ROWS, SMALL_DATA_STAGES_PER_CLASS
from sktransfer._training.net import draw_seed
from _tiny_backbones import CountingCNN  # tests/ is on sys.path (pytest rootdir import)

VIEWS = 8  # ImageAdapter.small_data_views


def _photos(n, size=40, seed=0):
    """Noise photos whose class is the brighter colour channel (red or blue)."""
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 160, size=(n, size, size, 3)).astype(np.uint8)
    y = np.arange(n) % 2
    X[y == 0, :, :, 0] += 90
    X[y == 1, :, :, 2] += 90
    return X, np.where(y == 0, "red", "blue")


def _backbone_weights(clf):
    return {k: v.detach().clone() for k, v in clf.net_.module_.backbone.state_dict().items()}


ROUTE_LAYERS = ["blocks.4", "blocks.6", "final"]  # Lite0's last two stages, then its final features


def test_the_defaults_on_few_photos_are_the_probe_solved_on_views():
    X, y = _photos(24)  # 12 photos a class: from SMALL_DATA_STAGES_PER_CLASS on, the probe reads two stages too
    clf = TransferClassifier("efficientnet_lite0", image_size=32, random_state=0).fit(X, y)
    assert len(clf.net_.history) == 0  # no fine-tuning epoch
    assert clf.net_.module_.stages == ROUTE_LAYERS and clf.layers is None  # the parameter is left as it was
    # The very head a frozen fit gets from the photos and their views (same seed, same views).
    views = clf.adapter_.with_views(clf.adapter_.check(X), VIEWS, seed=draw_seed(0))  # the fit's seed
    weights = np.r_[np.full(len(y), float(VIEWS)), np.ones(VIEWS * len(y))]  # a photo weighs as much as its views
    frozen = TransferClassifier("efficientnet_lite0", strategy="head", image_size=32, max_epochs=AUTO_HEAD_EPOCHS,
                                layers=ROUTE_LAYERS, random_state=0,
                                ).fit(views, np.concatenate([y] * (VIEWS + 1)), sample_weight=weights)
    np.testing.assert_allclose(clf.predict_proba(X), frozen.predict_proba(X), atol=1e-5)
    for name, value in _backbone_weights(frozen).items():  # the body is the pretrained one
        torch.testing.assert_close(_backbone_weights(clf)[name], value)
    assert clf.score(X, y) > 0.8  # it learned the colours


@pytest.mark.parametrize("per_class, layers, expected", [
    (SMALL_DATA_STAGES_PER_CLASS - 1, None, None),  # too few photos a class: the final features alone
    (SMALL_DATA_STAGES_PER_CLASS, None, ROUTE_LAYERS),
    (SMALL_DATA_STAGES_PER_CLASS, ["blocks.6"], ["blocks.6"]),  # the user's layers are kept
])
def test_the_stages_the_probe_reads_follow_the_photos_per_class(per_class, layers, expected):
    X, y = _photos(3 * per_class, size=32)
    y = np.array(["red", "green", "blue"])[np.arange(len(y)) % 3]
    clf = TransferClassifier("efficientnet_lite0", image_size=32, layers=layers, random_state=0).fit(X, y)
    assert clf.net_.module_.stages == expected and len(clf.net_.history) == 0


def test_a_regressor_on_few_photos_reads_the_final_features():
    X, y = _photos(2 * SMALL_DATA_STAGES_PER_CLASS, size=32)
    reg = TransferRegressor("efficientnet_lite0", image_size=32, random_state=0).fit(X, (y == "red").astype(float))
    assert reg.net_.module_.stages is None  # no classes to count photos in


def test_a_model_reading_stages_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    X, y = _photos(2 * SMALL_DATA_STAGES_PER_CLASS, size=32)
    clf = TransferClassifier("efficientnet_lite0", image_size=32, random_state=0).fit(X, y)
    assert clf.layers_ == ROUTE_LAYERS
    predictor = sktransfer.load_onnx(sktransfer.export_onnx(clf, tmp_path / "onnx"))
    np.testing.assert_allclose(predictor.predict_proba(X), clf.predict_proba(X), atol=1e-4)


def test_views_are_the_photos_then_seeded_crops():
    X, _ = _photos(3, size=50)
    adapter = TransferClassifier("efficientnet_lite0", image_size=32).fit(*_photos(4)).adapter_
    state = torch.random.get_rng_state()
    views = adapter.with_views(adapter.check(X), 2, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the user's random stream is untouched
    assert len(views) == 9 and all(v.dtype == np.uint8 and v.shape[2] == 3 for v in views)
    assert views[0].shape[:2] == (adapter.preprocessing.resize_size or 32,) * 2  # the photo, resized
    assert all(v.shape == (32, 32, 3) for v in views[3:])  # crops at the input size
    again = adapter.with_views(adapter.check(X), 2, seed=5)
    other = adapter.with_views(adapter.check(X), 2, seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(views, again))
    assert not all(np.array_equal(a, b) for a, b in zip(views[3:], other[3:]))
    assert np.array_equal(X, _photos(3, size=50)[0])  # the input is left as it was


@pytest.mark.parametrize("params", [{"max_epochs": 2}, {"head_epochs": 0}])
def test_an_explicit_budget_or_no_probe_fine_tunes(params):
    X, y = _photos(24)
    clf = TransferClassifier("efficientnet_lite0", image_size=32, random_state=0, **params).fit(X, y)
    assert len(clf.net_.history) > 0


def test_more_photos_than_the_limit_fine_tune():
    X, y = _photos(SMALL_DATA_ROWS + 1, size=32)
    clf = TransferClassifier("efficientnet_lite0", image_size=32, batch_size=128, random_state=0).fit(X, y)
    assert len(clf.net_.history) == 25  # max_epochs="auto": 2 steps a pass, MIN_STEPS = 50


def test_a_users_module_is_fine_tuned_as_before():
    X, y = _photos(24, size=12)
    clf = TransferClassifier(CountingCNN(), random_state=0).fit(X, y)
    assert len(clf.net_.history) > 0


def test_a_regressor_and_a_saved_model_take_the_same_route(tmp_path):
    X, y = _photos(16)
    target = (y == "red").astype(float) + np.linspace(0, 0.1, 16)
    reg = TransferRegressor("efficientnet_lite0", image_size=32, random_state=0).fit(X, target)
    assert len(reg.net_.history) == 0 and reg.predict(X).shape == (16,)
    clf = TransferClassifier("efficientnet_lite0", image_size=32, random_state=0).fit(X, y)
    clf.save_pretrained(tmp_path / "model")
    assert "| `layers_` | `['blocks.4', 'blocks.6', 'final']` |" in (tmp_path / "model" / "README.md").read_text()
    loaded = sktransfer.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-5)
    rows = dict(settings_rows(clf))
    assert rows["epochs"].startswith("0: the backbone was not fine-tuned")  # the report says which route ran
    assert rows["features"] == "pooled blocks.4, blocks.6, final (layers_)"  # and what the head reads


def test_a_validation_split_keeps_each_photos_views_on_its_side():
    from torch.utils.data import TensorDataset

    from sktransfer._training.splits import SplitByRow

    n, views = 10, 3
    dataset = TensorDataset(torch.arange(n * (views + 1)))  # position i is a view of photo i % n
    labels = np.tile(np.arange(n) % 2, views + 1)
    train, valid = SplitByRow(0.2, n, random_state=0)(dataset, labels)
    valid_photos = set(valid.indices)
    assert len(valid_photos) == 2 and valid_photos < set(range(n))  # whole photos, no views
    assert {labels[i] for i in valid_photos} == {0, 1}  # stratified by class
    assert all(i % n not in valid_photos for i in train.indices)  # no view of a validation photo trains
    assert len(train) == (n - 2) * (views + 1)  # a training photo brings all its views
    again, _ = SplitByRow(0.2, n, random_state=0)(dataset, labels)
    assert list(again.indices) == list(train.indices)
    with pytest.raises(ValueError, match="not 10 rows and whole views"):
        SplitByRow(0.2, n, random_state=0)(TensorDataset(torch.arange(15)), None)


def test_early_stopping_on_few_photos_validates_on_whole_photos(monkeypatch):
    import sktransfer._estimators.probe as probe
    from sktransfer._training.splits import SplitByRow

    splits = []

    class Spy(SplitByRow):
        def __call__(self, dataset, y=None, groups=None):
            train, valid = super().__call__(dataset, y, groups)
            splits.append((len(dataset), list(train.indices), list(valid.indices)))
            return train, valid

    monkeypatch.setattr(probe, "SplitByRow", Spy)
    X, y = _photos(24)
    clf = TransferClassifier("efficientnet_lite0", image_size=32, patience=2, random_state=0).fit(X, y)
    assert len(clf.net_.history) == 0  # still the probe's route
    size, train, valid = splits[0]  # (skorch may ask for the split more than once: the same split)
    assert all(split == splits[0] for split in splits)
    assert size == 24 * (VIEWS + 1) and all(i < 24 for i in valid)
    assert not {i % 24 for i in train} & set(valid)
    assert clf.score(X, y) > 0.8
