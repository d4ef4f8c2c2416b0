"""Checks in fit (and predict) that fail before any training, naming the problem and the fix."""

import pathlib

import numpy as np
import pytest
import torch
import torch.nn as nn

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._training.preflight import n_validation
from sktransfer.exceptions import InputModalityError, InvalidInputError

X_TAB = np.random.RandomState(0).normal(size=(20, 3))
Y_CLS = np.array([0, 1] * 10)
TEXTS = ["good film", "bad film", "great day", "awful day"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


class BatchNormNet(nn.Module):
    """Tabular backbone with a trained BatchNorm1d: a batch of one sample raises in train mode."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.lin(x)))


class BatchNormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def fitted_mlp():
    return TransferClassifier("mlp", max_epochs=1, random_state=0).fit(X_TAB, Y_CLS)


@pytest.fixture(scope="module")
def fitted_reg():
    return TransferRegressor("mlp", max_epochs=1, random_state=0).fit(X_TAB, np.arange(20.0))


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

    from sktransfer._inputs.checks import text_model_limit

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


# ------------------------------------------------------------------ validation split
def test_validation_split_size_matches_skorch():
    from skorch.dataset import ValidSplit

    for n, fraction in [(20, 0.1), (30, 0.1), (7, 0.3), (2, 0.5)]:
        train, valid = ValidSplit(fraction, stratified=False, random_state=0)(np.zeros((n, 1)))
        assert len(valid) == n_validation(fraction, n) and len(train) == n - len(valid)


def test_patience_with_a_class_of_one_sample():
    with pytest.raises(ValueError, match=r"patience=2 .* class\(es\) 'b' have a single sample \(class counts: 'a': 5, 'b': 1\).*patience=None"):
        TransferClassifier("mlp", patience=2).fit(X_TAB[:6], ["a"] * 5 + ["b"])


def test_validation_part_smaller_than_the_classes():
    y = np.arange(20) % 5
    with pytest.raises(ValueError, match="validation part gets 2 of 20 samples, fewer than the 5 classes.*larger validation_fraction"):
        TransferClassifier("mlp", validation_fraction=0.1).fit(X_TAB, y)


def test_training_part_smaller_than_the_classes():
    y = np.arange(20) % 5
    with pytest.raises(ValueError, match="training part gets 2 of 20 samples.*smaller validation_fraction"):
        TransferClassifier("mlp", validation_fraction=0.9).fit(X_TAB, y)


def test_regressor_split_with_nothing_left_to_train_on():
    with pytest.raises(ValueError, match=r"validation_fraction=0.5: of 1 sample\(s\), 1 go to validation and none are left"):
        TransferRegressor("mlp", validation_fraction=0.5).fit(X_TAB[:1], [1.0])


def test_a_split_that_fits_trains():
    clf = TransferClassifier("mlp", max_epochs=1, patience=1).fit(X_TAB, Y_CLS)  # 2 validation rows, 1 per class
    assert "valid_loss" in clf.net_.history[-1]


# ------------------------------------------------------------------ BatchNorm and a last batch of one
def test_batchnorm_drops_a_last_batch_of_one():
    clf = TransferClassifier(BatchNormNet(), max_epochs=2, batch_size=4, random_state=0).fit(X_TAB[:9], Y_CLS[:9])
    assert clf.net_.iterator_train__drop_last is True
    assert [len(epoch["batches"]) for epoch in clf.net_.history] == [2, 2]  # 9 rows: 4 + 4, the 9th dropped


def test_batchnorm_counts_the_rows_after_the_validation_split():
    # 20 rows, ceil(0.1 * 20) = 2 for validation: 18 train, 18 % 17 == 1.
    reg = TransferRegressor(BatchNormNet(), max_epochs=1, batch_size=17, validation_fraction=0.1)
    reg.fit(X_TAB, np.arange(20.0))
    assert reg.net_.iterator_train__drop_last is True and len(reg.net_.history[-1, "batches"]) == 2  # 1 train + 1 valid


def test_batchnorm2d_in_an_image_backbone(digits):
    X, y = digits
    X, y = X[:9], y[:9]
    clf = TransferClassifier(BatchNormCNN(), image_size=16, max_epochs=1, batch_size=4).fit(X, y)
    assert clf.net_.iterator_train__drop_last is True


def test_no_drop_without_a_trained_batchnorm():
    mlp = TransferClassifier("mlp", max_epochs=1, batch_size=4).fit(X_TAB[:9], Y_CLS[:9])
    head = TransferClassifier(BatchNormNet(), strategy="head", head_solver="optimizer", max_epochs=1,
                              batch_size=4).fit(X_TAB[:9], Y_CLS[:9])
    for clf in (mlp, head):
        assert not getattr(clf.net_, "iterator_train__drop_last", False)
        assert len(clf.net_.history[-1, "batches"]) == 3
    # The converged head (L-BFGS) trains on all nine rows in one batch: nothing to drop either.
    converged = TransferClassifier(BatchNormNet(), strategy="head", max_epochs=1).fit(X_TAB[:9], Y_CLS[:9])
    assert [batch["train_batch_size"] for batch in converged.net_.history[-1, "batches"]] == [9]


def test_users_drop_last_wins():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):  # torch's own error
        TransferClassifier(
            BatchNormNet(), max_epochs=1, batch_size=4, net_params={"iterator_train__drop_last": False}
        ).fit(X_TAB[:9], Y_CLS[:9])


def test_batch_size_from_net_params_is_the_one_checked():
    clf = TransferClassifier(BatchNormNet(), max_epochs=1, batch_size=32, net_params={"iterator_train__batch_size": 4})
    clf.fit(X_TAB[:9], Y_CLS[:9])
    assert clf.net_.iterator_train__drop_last is True


def test_one_training_sample_with_batchnorm():
    with pytest.raises(ValueError, match=r"One training sample, but the backbone's BatchNorm layer\(s\) \(bn\) train.*strategy='head'"):
        TransferRegressor(BatchNormNet(), max_epochs=1).fit(X_TAB[:1], [1.0])


# ------------------------------------------------------------------ a failed refit changes nothing
FAILED_REFITS = [
    ("fitted_mlp", {"device": "gpu"}, X_TAB, Y_CLS, ValueError, "not a device torch knows"),
    ("fitted_mlp", {}, None, Y_CLS, InvalidInputError, "X is None"),
    ("fitted_mlp", {}, "data/train.csv", Y_CLS, InputModalityError, "single path"),
    ("fitted_mlp", {}, X_TAB, ["a", None] * 10, ValueError, "missing label"),
    ("fitted_mlp", {"patience": 2}, X_TAB[:6], [0] * 5 + [1], ValueError, "single sample"),
    ("fitted_reg", {"backbone": BatchNormNet(), "validation_fraction": 0.5}, X_TAB[:2], [0.0, 1.0], ValueError,
     "One training sample"),
    ("fitted_reg", {"validation_fraction": 0.5}, X_TAB[:1], [1.0], ValueError, "none are left to train on"),
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
