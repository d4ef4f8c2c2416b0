"""Behaviour of the estimators: targets, weights, strategies, training options."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.datasets import make_classification, make_regression

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._estimators.base import resolve_device


@pytest.fixture(scope="module")
def tabular():
    X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=0)
    return X, y


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "ant"]),
        np.array([10, -3, 7]),
        np.array([True, False, True]),
    ],
)
def test_classifier_keeps_original_labels(tabular, labels):
    X, y = tabular
    y_labels = labels[y] if labels.dtype != bool else labels[np.minimum(y, 1)]
    clf = TransferClassifier("mlp", max_epochs=30, random_state=1).fit(X, y_labels)
    np.testing.assert_array_equal(clf.classes_, np.unique(y_labels))
    pred = clf.predict(X)
    assert pred.dtype == y_labels.dtype and set(pred) <= set(y_labels)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(clf.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # predict_proba columns follow classes_
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    assert clf.score(X, y_labels) > 0.8


def test_binary_classification(tabular):
    X, y = tabular
    yb = (y == 0).astype(int)
    clf = TransferClassifier("mlp", max_epochs=15, random_state=1).fit(X, yb)
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert clf.score(X, yb) > 0.85


def test_sample_weight_changes_the_fit(tabular):
    X, y = tabular
    base = TransferClassifier("mlp", max_epochs=5, random_state=0)
    w = np.where(y == 0, 20.0, 1.0)
    weighted = base.fit(X, y, sample_weight=w).predict(X)
    unweighted = TransferClassifier("mlp", max_epochs=5, random_state=0).fit(X, y).predict(X)
    # Upweighting class 0 makes it predicted more often.
    assert (weighted == 0).sum() > (unweighted == 0).sum()
    # Rescaling all weights changes nothing.
    scaled = TransferClassifier("mlp", max_epochs=5, random_state=0).fit(X, y, sample_weight=w * 7).predict(X)
    np.testing.assert_array_equal(scaled, weighted)


def test_class_weight_balanced_and_dict(tabular):
    X, y = tabular
    rare = np.r_[np.where(y == 0)[0][:8], np.where(y != 0)[0]]
    Xr, yr = X[rare], (y[rare] == 0).astype(int)
    plain = TransferClassifier("mlp", max_epochs=5, random_state=0).fit(Xr, yr)
    balanced = TransferClassifier("mlp", max_epochs=5, random_state=0, class_weight="balanced").fit(Xr, yr)
    as_dict = TransferClassifier("mlp", max_epochs=5, random_state=0, class_weight={1: 10.0, 0: 1.0}).fit(Xr, yr)
    assert (balanced.predict(Xr) == 1).sum() > (plain.predict(Xr) == 1).sum()
    assert (as_dict.predict(Xr) == 1).sum() > (plain.predict(Xr) == 1).sum()


def test_regressor_standardises_targets_and_maps_back():
    X, y = make_regression(n_samples=150, n_features=5, noise=1.0, random_state=0)
    y = 1000.0 + 50.0 * y / y.std()  # far from 0/1 scale
    reg = TransferRegressor("mlp", max_epochs=40, lr=3e-3, random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (150,)
    assert abs(pred.mean() - y.mean()) < 10
    assert reg.score(X, y) > 0.8
    np.testing.assert_allclose(reg.target_mean_, [y.mean()])


def test_regressor_multi_output():
    X, Y = make_regression(n_samples=150, n_features=5, n_targets=3, random_state=0)
    Y[:, 2] *= 100
    reg = TransferRegressor("mlp", max_epochs=40, lr=3e-3, random_state=0).fit(X, Y)
    assert reg.n_outputs_ == 3 and reg.predict(X).shape == (150, 3)
    assert reg.score(X, Y) > 0.7


def test_random_state_makes_fits_reproducible_and_leaves_global_rng(tabular):
    X, y = tabular
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = TransferClassifier("mlp", max_epochs=3, random_state=7, validation_fraction=0.2).fit(X, y)
    assert torch.rand(1) == expected_next  # the global torch RNG is untouched
    b = TransferClassifier("mlp", max_epochs=3, random_state=7, validation_fraction=0.2).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = TransferClassifier("mlp", max_epochs=3, random_state=8, validation_fraction=0.2).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_early_stopping_restores_best_epoch(tabular):
    X, y = tabular
    clf = TransferClassifier("mlp", max_epochs=60, lr=0.05, patience=3, random_state=0).fit(X, y)
    history = clf.net_.history
    assert len(history) < 60  # stopped early
    losses = history[:, "valid_loss"]
    best = int(np.argmin(losses))
    assert best == len(history) - 1 - 3  # patience epochs after the best
    # The restored weights reproduce the best epoch's validation loss, not the last one.
    assert losses[best] < losses[-1]


def test_validation_fraction_records_valid_loss(tabular):
    X, y = tabular
    clf = TransferClassifier("mlp", max_epochs=3, validation_fraction=0.25, random_state=0).fit(X, y)
    assert len(clf.net_.history[:, "valid_loss"]) == 3


def test_verbose_prints_epochs(tabular, capsys):
    X, y = tabular
    TransferClassifier("mlp", max_epochs=2, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr()
    assert "train_loss" in out.out and "epoch" in out.out
    TransferClassifier("mlp", max_epochs=2, verbose=0, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_net_params_reach_skorch(tabular):
    X, y = tabular
    clf = TransferClassifier("mlp", max_epochs=1, net_params={"iterator_train__drop_last": True, "batch_size": 50})
    clf.fit(X, y)
    assert clf.net_.batch_size == 50
    assert clf.net_.iterator_train__drop_last is True
    # 120 samples, batch 50, drop_last: 2 batches in the epoch.
    assert len(clf.net_.history[-1, "batches"]) == 2


@pytest.mark.parametrize("name, optim", [("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)])
def test_optimizer_and_discriminative_lr(tabular, name, optim):
    X, y = tabular
    clf = TransferClassifier(
        "mlp", optimizer=name, lr=0.01, backbone_lr=0.002, weight_decay=0.1, max_epochs=1, lr_schedule="constant",
        warmup_fraction=0.0,
    )
    clf.fit(X, y)
    opt = clf.net_.optimizer_
    assert isinstance(opt, optim)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == [0.002, 0.01]
    assert all(g["weight_decay"] == 0.1 for g in opt.param_groups)


def test_device_auto_picks_cuda_only_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_device_auto_trains_on_the_current_cuda_device(digits):
    # As in a dask_cuda worker (whose own GPU is its current device) or a thread that chose one.
    from _tiny_backbones import CountingCNN

    X, y = digits
    previous = torch.cuda.current_device()
    torch.cuda.set_device(1)
    try:
        clf = TransferClassifier(CountingCNN(), image_size=16, max_epochs=1, random_state=0).fit(X, y)
    finally:
        torch.cuda.set_device(previous)
    assert {p.device for p in clf.net_.module_.parameters()} == {torch.device("cuda", 1)}


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)


def test_module_backbone_is_copied_not_trained_in_place(digits):
    X, y = digits
    cnn = TinyCNN()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    clf = TransferClassifier(cnn, image_size=16, max_epochs=2, random_state=0).fit(X, y)
    assert clf.net_.module_.head.in_features == 4
    for k, v in cnn.state_dict().items():
        torch.testing.assert_close(v, before[k])
    trained = clf.net_.module_.backbone.state_dict()
    assert not torch.equal(trained["conv.weight"], before["conv.weight"])


def test_head_strategy_freezes_backbone_and_batchnorm(digits):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, strategy="head", augment="default", image_size=32, max_epochs=2, random_state=0
    )
    clf.fit(X, y)  # augmentation on: the backbone runs in every training step
    backbone = clf.net_.module_.backbone
    assert all(not p.requires_grad for p in backbone.parameters())
    assert torch.all(backbone.bn1.running_mean == 0) and torch.all(backbone.bn1.running_var == 1)
    assert int(backbone.bn1.num_batches_tracked) == 0
    clf.net_.module_.train()
    assert not backbone.training and clf.net_.module_.head.training


def test_partial_strategy_trains_top_blocks_only(digits):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, strategy="partial", trainable_blocks=1, image_size=32, max_epochs=1,
        random_state=0,
    ).fit(X, y)
    backbone = clf.net_.module_.backbone
    assert all(p.requires_grad for p in backbone.layer4.parameters())
    assert not any(p.requires_grad for p in backbone.layer3.parameters())
    assert not any(p.requires_grad for p in backbone.conv1.parameters())
    assert backbone.layer4[0].bn1.num_batches_tracked > 0  # the trained block's BN learns
    assert backbone.layer3[0].bn1.num_batches_tracked == 0  # frozen BN stays put
