"""pickle and joblib round-trips predict exactly what the fitted model predicted."""

import pickle
import warnings

import joblib
import numpy as np
import pytest

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._training.net import fast_path


def roundtrip(est, how, tmp_path):
    if how == "pickle":
        return pickle.loads(pickle.dumps(est))
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    return joblib.load(path)


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_tabular_roundtrip(how, tmp_path):
    X = np.random.RandomState(0).normal(size=(40, 5))
    reg = TransferRegressor("mlp", max_epochs=3, random_state=0).fit(X, X[:, :2] * 3)
    loaded = roundtrip(reg, how, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert loaded.n_features_in_ == 5


@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_text_roundtrip(how, tmp_path, sentences):
    X, y = sentences
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=3, random_state=0).fit(X, y)
    loaded = roundtrip(clf, how, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)


def test_image_roundtrip_after_partial_finetuning(tmp_path, digits):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, strategy="partial", image_size=32, max_epochs=1, random_state=0
    ).fit(X, y)
    loaded = roundtrip(clf, "joblib", tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # Frozen blocks stay frozen after loading, so further training keeps the strategy.
    assert not any(p.requires_grad for p in loaded.net_.module_.backbone.layer1.parameters())


def test_model_fitted_on_cuda_loads_on_cpu_only_machine(monkeypatch):
    """A net whose device is CUDA unpickles onto the CPU when no GPU is present."""
    import torch

    X = np.random.RandomState(0).normal(size=(30, 4))
    clf = TransferClassifier("mlp", max_epochs=2, random_state=0).fit(X, X[:, 0] > 0)
    expected = clf.predict_proba(X)
    clf.net_.device = "cuda"  # as if fitted on a GPU (skorch stores tensors with map_location on load)
    clf.device_ = "cuda"
    clf.fast_path_ = fast_path("cuda", "auto", "tabular", bf16_supported=True)
    clf.net_.amp_dtype = clf.fast_path_.amp_dtype
    payload = pickle.dumps(clf)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        loaded = pickle.loads(payload)
    assert str(loaded.net_.device) == "cpu" and loaded.device_ == "cpu"
    assert loaded.fast_path_.amp_dtype is None and loaded.net_.amp_dtype is None  # fp32 on the CPU
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_a_pickle_holds_each_weight_once():
    import pickle

    import torch.nn as nn

    from sktransfer import TransferClassifier

    X = np.random.RandomState(0).normal(size=(40, 3)).astype(np.float32)
    y = np.array([0, 1] * 20)
    backbone = nn.Sequential(nn.Linear(3, 2048), nn.ReLU(), nn.Linear(2048, 512))
    weights = sum(p.numel() * p.element_size() for p in backbone.parameters())
    clf = TransferClassifier(backbone, strategy="full", max_epochs=1, random_state=0).fit(X, y)
    size = len(pickle.dumps(clf))
    # The user's module (the backbone parameter), the fitted copy and AdamW's two moments: 4x
    # the weights. skorch's net also held the fitted module as its ``module`` parameter,
    # and the LR scheduler the optimizer with its weights and moments: 7x before.
    assert 3.9 * weights < size < 4.3 * weights
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.net_.module is loaded.net_.module_
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
