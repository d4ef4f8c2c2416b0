"""head_epochs: train the head on frozen features first, then fine-tune (LP-FT)."""

import numpy as np
from sklearn.datasets import make_classification

from sktransfer import TransferClassifier
from sktransfer._estimators.base import probe_head


def _data():
    return make_classification(n_samples=80, n_features=6, n_informative=4, n_classes=3, random_state=0)


def test_fine_tuning_starts_from_the_probed_head():
    X, y = _data()
    probe = TransferClassifier("mlp", strategy="head", max_epochs=4, random_state=0).fit(X, y)
    est = TransferClassifier("mlp", head_epochs=4, random_state=0)
    prepared = est._prepare_single(X, est.get_params(deep=False))
    warm = probe_head(est, X, y, None, prepared, seed=0)
    assert not warm.final  # tabular rows: fine-tuning follows
    for name, tensor in probe.net_.module_.head.state_dict().items():
        np.testing.assert_array_equal(warm.head[name].numpy(), tensor.numpy())
    # A trained head starts fine-tuning at a lower loss than a random one.
    warm = est.set_params(head_epochs=10, lr=1e-2).fit(X, y)
    cold = TransferClassifier("mlp", head_epochs=0, lr=1e-2, random_state=0).fit(X, y)
    assert warm.net_.history[0, "train_loss"] < cold.net_.history[0, "train_loss"] - 0.05


def test_head_epochs_is_seeded_and_leaves_the_parameters_alone():
    X, y = _data()
    first = TransferClassifier("mlp", head_epochs=2, max_epochs=2, random_state=0)
    second = TransferClassifier("mlp", head_epochs=2, max_epochs=2, random_state=0)
    np.testing.assert_array_equal(first.fit(X, y).predict_proba(X), second.fit(X, y).predict_proba(X))
    assert first.get_params()["strategy"] == "full" and first.get_params()["max_epochs"] == 2
    assert len(first.net_.history) == 2  # the fine-tuning epochs; the probe's are not in the history


def test_head_epochs_means_nothing_for_a_frozen_backbone():
    X, y = _data()
    plain = TransferClassifier("mlp", strategy="head", max_epochs=3, random_state=0).fit(X, y)
    probed = TransferClassifier("mlp", strategy="head", head_epochs=5, max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(plain.predict_proba(X), probed.predict_proba(X))
