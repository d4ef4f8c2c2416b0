"""Budgets in optimizer steps (``max_epochs="auto"``) and the converged linear probe before
fine-tuning (``head_epochs="auto"``)."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.datasets import make_classification

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._cli.commands import epochs


def _body():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh())


def _data(n, seed=0):
    return make_classification(n_samples=n, n_features=8, n_informative=5, random_state=seed)


@pytest.mark.parametrize(("n", "batch_size", "expected"), [(16, 32, 50), (100, 32, 13), (640, 32, 10), (64, 8, 10)])
def test_auto_epochs_take_at_least_50_steps_and_10_passes(n, batch_size, expected):
    X, y = _data(n)
    clf = TransferClassifier(_body(), batch_size=batch_size, head_epochs=0, random_state=0).fit(X, y)
    assert len(clf.net_.history) == expected
    steps = sum(len(epoch["batches"]) for epoch in clf.net_.history)
    assert steps >= 50


def test_auto_epochs_count_the_rows_left_after_the_validation_split():
    X, y = _data(40)
    clf = TransferClassifier(_body(), validation_fraction=0.5, head_epochs=0, random_state=0).fit(X, y)
    assert len(clf.net_.history) == 50  # 20 training rows: one batch a pass


def test_an_integer_budget_is_taken_as_given():
    X, y = _data(16)
    clf = TransferClassifier(_body(), max_epochs=3, head_epochs=0, random_state=0).fit(X, y)
    assert len(clf.net_.history) == 3
    assert clf.max_epochs == 3


def test_auto_leaves_the_parameter_as_the_user_set_it():
    X, y = _data(16)
    clf = TransferClassifier(_body(), random_state=0).fit(X, y)
    assert clf.get_params()["max_epochs"] == "auto" and clf.get_params()["head_epochs"] == "auto"


def test_a_converged_head_gets_ten_epochs_at_most():
    X, y = _data(16)
    clf = TransferClassifier(_body(), strategy="head", random_state=0).fit(X, y)
    assert 1 <= len(clf.net_.history) <= 10
    assert type(clf.net_.optimizer_).__name__ == "LBFGS"


def test_the_warmup_is_a_fraction_of_the_steps():
    X, y = _data(16)
    clf = TransferClassifier(_body(), head_epochs=0, random_state=0).fit(X, y)
    scheduler = dict(clf.net_.callbacks_)["lr_schedule"]
    # The schedule spans the 50 steps (its warmup is warmup_fraction of them), and ran to its end.
    assert scheduler.total_steps_ == 50
    lrs = [group["lr"] for group in scheduler.lr_scheduler_.optimizer.param_groups]
    assert all(lr < 1e-4 for lr in lrs)


def test_auto_probe_starts_fine_tuning_from_the_converged_head():
    X, y = _data(60)
    X_test, _ = _data(300, seed=1)
    probe = TransferClassifier(_body(), strategy="head", random_state=0).fit(X, y)
    # A step too small to move anything: what the fine-tune returns is its starting point.
    still = TransferClassifier(_body(), lr=1e-12, max_epochs=1, random_state=0).fit(X, y)
    np.testing.assert_allclose(still.predict_proba(X_test), probe.predict_proba(X_test), atol=1e-5)
    random_head = TransferClassifier(_body(), lr=1e-12, max_epochs=1, head_epochs=0, random_state=0).fit(X, y)
    assert np.abs(random_head.predict_proba(X_test) - probe.predict_proba(X_test)).max() > 0.05


def test_auto_probe_is_off_where_the_head_would_not_converge():
    X, y = _data(60)
    X_test, _ = _data(300, seed=1)
    probe = TransferClassifier(_body(), strategy="head", random_state=0).fit(X, y)
    clf = TransferClassifier(_body(), lr=1e-12, max_epochs=1, head_solver="optimizer", random_state=0).fit(X, y)
    assert np.abs(clf.predict_proba(X_test) - probe.predict_proba(X_test)).max() > 0.05


def test_regressors_get_the_probe_and_the_budget_too():
    X, y = _data(16)
    target = X[:, 0] * 3.0 + 1.0
    reg = TransferRegressor(_body(), random_state=0).fit(X, target)
    assert len(reg.net_.history) == 50
    still = TransferRegressor(_body(), lr=1e-12, max_epochs=1, random_state=0).fit(X, target)
    ridge_like = TransferRegressor(_body(), strategy="head", random_state=0).fit(X, target)
    np.testing.assert_allclose(still.predict(X), ridge_like.predict(X), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bad", ["10.5", "many", "-"])
def test_cli_epochs_take_a_whole_number_or_auto(bad):
    import argparse

    assert epochs("auto") == "auto" and epochs("7") == 7
    with pytest.raises(argparse.ArgumentTypeError, match="whole number or auto"):
        epochs(bad)


@pytest.mark.parametrize("param", ["max_epochs", "head_epochs"])
def test_a_bad_budget_names_the_choices(param):
    X, y = _data(16)
    with pytest.raises(ValueError, match=f"{param}.*'auto'"):
        TransferClassifier(_body(), **{param: "many"}).fit(X, y)
