"""Bad input gets a ValueError or TypeError that names the problem, and no half-fitted estimator."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer.exceptions import (
    InputModalityError,
    InvalidInputError,
    UnknownBackboneError,
)

X_TAB = np.random.RandomState(0).normal(size=(20, 3))
Y_CLS = np.array([0, 1] * 10)


def tiny_image_clf(**kw):
    return TransferClassifier("resnet18", pretrained=False, image_size=16, max_epochs=1, strategy="head", **kw)


def test_empty_X():
    with pytest.raises(ValueError, match="0 sample"):
        TransferClassifier("mlp").fit(np.empty((0, 3)), [])
    with pytest.raises(ValueError, match="0 sample"):
        tiny_image_clf().fit([], [])


def test_length_mismatch():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        TransferClassifier("mlp").fit(X_TAB, Y_CLS[:-1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        tiny_image_clf().fit(np.zeros((4, 8, 8)), [0, 1, 0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_y(bad):
    y = np.arange(20, dtype=float)
    y[3] = bad
    with pytest.raises(ValueError, match="Input y contains (NaN|infinity)"):
        TransferRegressor("mlp").fit(X_TAB, y)


def test_single_class():
    with pytest.raises(ValueError, match="only 1 class .*'a'"):
        TransferClassifier("mlp").fit(X_TAB, ["a"] * 20)


def test_ragged_images_in_ndarray():
    ragged = np.empty(3, dtype=object)
    ragged[:] = [np.zeros((8, 8)), np.zeros((9, 9)), np.zeros((8, 8))]
    with pytest.raises(InvalidInputError, match="different shapes.*Python list"):
        tiny_image_clf().fit(ragged, [0, 1, 0])


def test_ragged_images_as_a_list_are_fine():
    images = [np.zeros((8, 8)), np.full((12, 10), 200.0), np.zeros((8, 8, 3), dtype=np.uint8), np.ones((9, 9))]
    clf = tiny_image_clf().fit(images, [0, 1, 0, 1])
    assert clf.predict(images).shape == (4,)


def test_unreadable_image_path_names_the_file(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(good)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png")
    with pytest.raises(InvalidInputError, match="broken.png"):
        tiny_image_clf().fit([str(good), str(broken)], [0, 1])
    with pytest.raises(InvalidInputError, match="missing.jpg"):
        tiny_image_clf().fit([str(good), str(tmp_path / "missing.jpg")], [0, 1])


def test_text_given_to_image_backbone():
    with pytest.raises(InputModalityError, match="looks like text.*takes images"):
        tiny_image_clf().fit(["a nice day", "a bad day"], [0, 1])
    with pytest.raises(TypeError):
        tiny_image_clf().fit(["a nice day", "a bad day"], [0, 1])


def test_images_given_to_text_backbone():
    with pytest.raises(InputModalityError, match="numeric array.*takes text"):
        TransferClassifier("all-MiniLM-L6-v2").fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])
    with pytest.raises(InputModalityError, match="takes text"):
        TransferClassifier("all-MiniLM-L6-v2").fit(["fine", 3], [0, 1])


def test_strings_given_to_tabular_backbone():
    with pytest.raises(TypeError, match="numeric feature matrix"):
        TransferClassifier("mlp").fit(["a", "b"], [0, 1])


def test_unknown_backbone_lists_near_matches():
    with pytest.raises(UnknownBackboneError, match="Did you mean: resnet18") as info:
        TransferClassifier("resnet81").fit(X_TAB, Y_CLS)
    assert isinstance(info.value, ValueError)
    assert "list_backbones" in str(info.value)


def test_predict_before_fit():
    for method in ("predict", "predict_proba", "score"):
        with pytest.raises(NotFittedError):
            args = (X_TAB, Y_CLS) if method == "score" else (X_TAB,)
            getattr(TransferClassifier("mlp"), method)(*args)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"strategy": "frozen"}, "'strategy' parameter"),
        ({"lr": -1.0}, "'lr' parameter"),
        ({"max_epochs": 0}, "'max_epochs' parameter"),
        ({"validation_fraction": 1.5}, "'validation_fraction' parameter"),
        ({"augment": "heavy"}, "'augment' parameter"),
        ({"augment": "default"}, "augment='default': augment is defined for image and text backbones only"),
        ({"strategy": "partial", "trainable_blocks": 3}, "trainable_blocks=3 .* 2 blocks"),
    ],
)
def test_bad_parameters_are_rejected_in_fit(params, match):
    clf = TransferClassifier("mlp", **params)  # __init__ stores, never validates
    with pytest.raises(ValueError, match=match):
        clf.fit(X_TAB, Y_CLS)


def test_bad_skorch_setting_is_reported_by_skorch():
    with pytest.raises(ValueError, match="iterator_trian__shuffle"):
        TransferClassifier("mlp", net_params={"iterator_trian__shuffle": True}).fit(X_TAB, Y_CLS)


def test_failed_fit_leaves_no_half_fitted_estimator():
    clf = TransferClassifier("mlp", max_epochs=1)
    with pytest.raises(ValueError):
        clf.fit(X_TAB, ["a"] * 20)
    assert not hasattr(clf, "net_") and not hasattr(clf, "n_features_in_") and not hasattr(clf, "classes_")
    with pytest.raises(NotFittedError):
        clf.predict(X_TAB)


def test_failed_refit_keeps_the_previous_model():
    clf = TransferClassifier("mlp", max_epochs=2, random_state=0).fit(X_TAB, Y_CLS)
    before = clf.predict_proba(X_TAB)
    with pytest.raises(ValueError):
        clf.fit(np.zeros((5, 7)), ["x"] * 5)
    assert clf.n_features_in_ == 3
    np.testing.assert_array_equal(clf.predict_proba(X_TAB), before)


def test_user_data_is_not_modified():
    X = X_TAB.copy()
    y = Y_CLS.copy()
    TransferClassifier("mlp", max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(X, X_TAB)
    np.testing.assert_array_equal(y, Y_CLS)
