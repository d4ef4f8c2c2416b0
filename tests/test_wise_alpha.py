"""wise_alpha: WiSE-FT, the fine-tuned weights interpolated toward where fine-tuning began."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch.callbacks import Callback

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._training.budget import AUTO_WISE_ALPHA


class Weights(Callback):
    """Records the weights at the start and at the end of training (after every callback before it)."""

    def on_train_begin(self, net, **kwargs):
        self.start_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    def on_train_end(self, net, **kwargs):
        self.end_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}


def _data():
    return make_classification(n_samples=60, n_features=6, n_informative=4, n_classes=3, random_state=0)


def _fit(**params):
    X, y = _data()
    est = TransferClassifier("mlp", head_epochs=3, max_epochs=3, lr=1e-2, random_state=0,
                             net_params={"callbacks": [("weights", Weights())]}, **params)
    return est.fit(X, y)


def _weights(est):
    return dict(est.net_.callbacks_)["weights"]


def test_the_weights_land_at_alpha_between_the_start_and_the_fine_tuned_ones():
    tuned, mixed = _fit(wise_alpha=1.0), _fit(wise_alpha=0.3)
    start, end, got = _weights(tuned).start_, _weights(tuned).end_, _weights(mixed).end_
    for name, value in _weights(mixed).start_.items():
        torch.testing.assert_close(value, start[name])  # the same seeded fit up to the interpolation
    changed = [name for name in start if not torch.equal(start[name], end[name])]
    assert changed  # the body and the head trained
    for name in start:
        expected = start[name] + 0.3 * (end[name] - start[name]) if end[name].is_floating_point() else end[name]
        torch.testing.assert_close(got[name], expected)
    assert "start_" not in dict(mixed.net_.callbacks_)["weight_ensemble"].__dict__  # the copy is dropped


def test_alpha_zero_returns_the_probe_on_the_untrained_body():
    est = _fit(wise_alpha=0.0)
    for name, value in _weights(est).start_.items():
        torch.testing.assert_close(_weights(est).end_[name], value)
    X, y = _data()
    probe = TransferClassifier("mlp", strategy="head", max_epochs=3, random_state=0).fit(X, y)
    for name, value in probe.net_.module_.head.state_dict().items():
        torch.testing.assert_close(est.net_.module_.head.state_dict()[name], value)


def test_auto_interpolates_only_after_a_probe_on_one_batch():
    X, y = _data()
    # 60 rows at batch 64: one step a pass, 50 passes over the same rows.
    probed = TransferClassifier("mlp", head_epochs=2, max_epochs=2, batch_size=64, random_state=0).fit(X, y)
    assert dict(probed.net_.callbacks_)["weight_ensemble"].alpha == AUTO_WISE_ALPHA
    # At batch 32, two steps a pass: the fine-tuned weights are kept.
    larger = TransferClassifier("mlp", head_epochs=2, max_epochs=2, random_state=0).fit(X, y)
    assert "weight_ensemble" not in dict(larger.net_.callbacks_)
    assert "weight_ensemble" in dict(larger.set_params(wise_alpha=0.5).fit(X, y).net_.callbacks_)
    # "mlp" has random weights: "auto" runs no probe, so there is no start worth returning to.
    one = {"max_epochs": 2, "batch_size": 64, "random_state": 0}
    for est in (TransferClassifier("mlp", **one), TransferClassifier("mlp", head_epochs=0, **one),
                TransferClassifier("mlp", strategy="head", wise_alpha=0.5, **one), TransferRegressor("mlp", **one)):
        est.fit(X, y.astype(float) if isinstance(est, TransferRegressor) else y)
        assert "weight_ensemble" not in dict(est.net_.callbacks_)


def test_an_explicit_alpha_interpolates_without_a_probe_and_predicts_the_same_after_pickling():
    import pickle

    X, y = _data()
    est = TransferClassifier("mlp", head_epochs=0, wise_alpha=0.5, max_epochs=2, random_state=0).fit(X, y)
    assert dict(est.net_.callbacks_)["weight_ensemble"].alpha == 0.5
    np.testing.assert_allclose(pickle.loads(pickle.dumps(est)).predict_proba(X), est.predict_proba(X), rtol=1e-6)


def test_tied_weights_are_mixed_once():
    from types import SimpleNamespace

    from sktransfer._training.callbacks import WeightEnsemble

    first, second = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    second.weight = first.weight  # tied: one tensor under two names in the state dict
    net = SimpleNamespace(module_=torch.nn.Sequential(first, second))
    start = first.weight.detach().clone()
    callback = WeightEnsemble(0.5)
    callback.on_train_begin(net)
    with torch.no_grad():
        first.weight.add_(1.0)
    callback.on_train_end(net)
    torch.testing.assert_close(first.weight.detach(), start + 0.5)


@pytest.mark.parametrize("value", [1.5, -0.1, "half"])
def test_a_bad_alpha_is_refused(value):
    X, y = _data()
    with pytest.raises(ValueError, match="wise_alpha"):
        TransferClassifier("mlp", wise_alpha=value).fit(X, y)
