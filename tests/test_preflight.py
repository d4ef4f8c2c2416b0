"""Checks in fit (and predict) that fail before any training, naming the problem and the fix."""

import pathlib

import numpy as np
import pytest
import torch

from sktransfer import TransferClassifier
from sktransfer.exceptions import InputModalityError, InvalidInputError

X_TAB = np.random.RandomState(0).normal(size=(20, 3))
Y_CLS = np.array([0, 1] * 10)
TEXTS = ["good film", "bad film", "great day", "awful day"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.fixture(scope="module")
def fitted_mlp():
    return TransferClassifier("mlp", max_epochs=1, random_state=0).fit(X_TAB, Y_CLS)


@pytest.fixture(scope="module")
def fitted_text():
    return TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1, random_state=0).fit(TEXTS, [1, 0, 1, 0])


# ------------------------------------------------------------------ device
@NO_CUDA
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda(device):
    with pytest.raises(ValueError, match=r"CUDA is not available on this machine.*device='auto'.*'cpu'"):
        TransferClassifier("mlp", device=device).fit(X_TAB, Y_CLS)


def test_cuda_index_beyond_the_device_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"device='cuda:3' but this machine has 2 CUDA device\(s\), numbered 0 to 1"):
        TransferClassifier("mlp", device="cuda:3").fit(X_TAB, Y_CLS)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_mps():
    with pytest.raises(ValueError, match="MPS .* not available.*device='auto' or 'cpu'"):
        TransferClassifier("mlp", device="mps").fit(X_TAB, Y_CLS)


@pytest.mark.parametrize("device", ["gpu", "GPU", "cdua", "cuda:x", ""])
def test_unknown_device_names_the_valid_forms(device):
    with pytest.raises(ValueError, match=r"not a device torch knows. Use one of 'auto', 'cpu', 'cuda', 'cuda:0'"):
        TransferClassifier("mlp", device=device).fit(X_TAB, Y_CLS)


@pytest.mark.parametrize("device", ["auto", "cpu", "cpu:0", torch.device("cpu")])
def test_valid_devices_fit(device):
    assert TransferClassifier("mlp", max_epochs=1, device=device).fit(X_TAB, Y_CLS).device_.startswith("cpu")


# ------------------------------------------------------------------ X
@pytest.mark.parametrize("backbone", ["mlp", "all-MiniLM-L6-v2", "resnet18"])
def test_X_none_in_fit(backbone):
    with pytest.raises(InvalidInputError, match="X is None: pass the samples"):
        TransferClassifier(backbone, pretrained=False).fit(None, Y_CLS)


@pytest.mark.parametrize("path", ["data/train.csv", pathlib.Path("data/train.csv"), b"train.parquet"])
@pytest.mark.parametrize("backbone", ["mlp", "all-MiniLM-L6-v2", "resnet18"])
def test_single_file_name_in_fit(backbone, path):
    with pytest.raises(InputModalityError, match=r"X is a single path '.*train\..*'; .*pandas.read_csv"):
        TransferClassifier(backbone, pretrained=False).fit(path, Y_CLS)


def test_single_directory_name_in_fit(tmp_path):
    with pytest.raises(InputModalityError, match="a directory; .*glob.glob"):
        TransferClassifier("resnet18", pretrained=False).fit(tmp_path, Y_CLS)
    with pytest.raises(TypeError, match="a directory"):  # an InputModalityError is a TypeError
        TransferClassifier("resnet18", pretrained=False).fit(str(tmp_path), Y_CLS)


def test_X_none_or_path_in_predict(fitted_mlp, fitted_text):
    for fitted in (fitted_mlp, fitted_text):
        for method in (fitted.predict, fitted.predict_proba):
            with pytest.raises(InvalidInputError, match="X is None"):
                method(None)
            with pytest.raises(InputModalityError, match="X is a single path 'test.csv'"):
                method("test.csv")


def test_single_sentence_keeps_the_adapters_message():
    with pytest.raises(InputModalityError, match=r"single string.*e\.g\. \[text\]"):
        TransferClassifier("all-MiniLM-L6-v2").fit("a sentence, not a file name", [0])


# ------------------------------------------------------------------ text
def test_max_length_beyond_the_models_positions():
    with pytest.raises(ValueError, match=r"max_length=1000 .* 512 tokens \(max_position_embeddings\).*max_length=512"):
        TransferClassifier("all-MiniLM-L6-v2", max_length=1000).fit(TEXTS, [1, 0, 1, 0])


def test_max_length_beyond_the_positions_of_a_reused_backbone(fitted_text):
    with pytest.raises(ValueError, match="max_length=513 .* 512 tokens"):
        TransferClassifier(fitted_text, max_length=513).fit(TEXTS, [1, 0, 1, 0])


def test_max_length_limit_counts_the_padding_offset():
    from types import SimpleNamespace

    from sktransfer._preflight import text_model_limit

    roberta = SimpleNamespace(max_position_embeddings=514, model_type="roberta", pad_token_id=1)
    assert text_model_limit(None, roberta) == (512, "max_position_embeddings - 2 (padding offset)")
    assert text_model_limit(SimpleNamespace(model_max_length=128), None)[0] == 128
    assert text_model_limit(SimpleNamespace(model_max_length=int(1e30)), None)[0] is None


@pytest.mark.parametrize("bad", ["lone \ud800 surrogate", "\udcff"])
def test_text_that_utf8_cannot_encode(bad, fitted_text):
    texts = ["fine", "also fine", bad, "ok"]
    match = r"X\[2\] holds a character that can't be encoded as UTF-8.*encode\('utf-8', 'replace'\)"
    with pytest.raises(InvalidInputError, match=match):
        TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1).fit(texts, [1, 0, 1, 0])
    with pytest.raises(InvalidInputError, match=match):
        fitted_text.predict(texts)


# ------------------------------------------------------------------ y
@pytest.mark.parametrize(
    "y, n_missing",
    [
        (["a", None] * 10, 10),
        (np.array(["a", "b", np.nan, "a"] * 5, dtype=object), 5),
        ([0.0, 1.0, np.nan, 1.0] * 5, 5),
    ],
)
def test_missing_class_labels(y, n_missing):
    with pytest.raises(ValueError, match=rf"y holds {n_missing} missing label\(s\) .*Drop those samples.*fill"):
        TransferClassifier("mlp").fit(X_TAB, y)


def test_missing_labels_in_a_pandas_series():
    pd = pytest.importorskip("pandas")
    y = pd.Series(["a", "b", None, "a"] * 5)
    with pytest.raises(ValueError, match="y holds 5 missing label.*first at index 2"):
        TransferClassifier("mlp").fit(X_TAB, y)


# ------------------------------------------------------------------ a failed refit changes nothing
FAILED_REFITS = [
    ("fitted_mlp", {"device": "gpu"}, X_TAB, Y_CLS, ValueError, "not a device torch knows"),
    ("fitted_mlp", {}, None, Y_CLS, InvalidInputError, "X is None"),
    ("fitted_mlp", {}, "data/train.csv", Y_CLS, InputModalityError, "single path"),
    ("fitted_mlp", {}, X_TAB, ["a", None] * 10, ValueError, "missing label"),
    ("fitted_text", {"max_length": 4096}, TEXTS, [1, 0, 1, 0], ValueError, "512 tokens"),
    ("fitted_text", {}, ["ok", "\ud800", "ok", "ok"], [1, 0, 1, 0], InvalidInputError, "UTF-8"),
]
if not torch.cuda.is_available():
    FAILED_REFITS.append(("fitted_mlp", {"device": "cuda"}, X_TAB, Y_CLS, ValueError, "CUDA is not available"))


@pytest.mark.parametrize("fixture, params, X, y, error, match", FAILED_REFITS)
def test_failed_refit_keeps_the_previous_model(request, fixture, params, X, y, error, match):
    fitted = request.getfixturevalue(fixture)
    X_ref = TEXTS if fixture == "fitted_text" else X_TAB
    outputs = fitted.predict if fixture == "fitted_reg" else fitted.predict_proba
    before, original = outputs(X_ref), fitted.get_params(deep=False)
    fitted.set_params(**params)
    try:
        with pytest.raises(error, match=match):
            fitted.fit(X, y)
        np.testing.assert_array_equal(outputs(X_ref), before)
        # fit restored the estimator as it was when called: the new parameters, the old model.
        assert all(fitted.get_params(deep=False)[k] is v for k, v in params.items())
    finally:
        fitted.set_params(**original)  # the fixture is shared
