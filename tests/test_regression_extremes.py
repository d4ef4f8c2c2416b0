"""TransferRegressor on extreme values: huge or constant targets, huge features."""

import numpy as np
import pytest

from sktransfer import TransferRegressor


def regressor(**kw):
    params = dict(max_epochs=30, lr=1e-2, random_state=0)
    params.update(kw)
    return TransferRegressor("mlp", **params)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    return X, X @ np.array([1.0, -2.0, 0.5])


def r2(y, pred):
    return 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)


@pytest.mark.parametrize("scale", [1e20, 1e300])
def test_huge_targets_train_like_ordinary_ones(data, scale):
    X, y = data
    ordinary = regressor().fit(X, y).predict(X)
    huge = regressor().fit(X, y * scale)
    assert np.isfinite(huge.target_scale_).all() and np.isfinite(huge.target_mean_).all()
    predicted = huge.predict(X)
    assert np.isfinite(predicted).all()
    # Standardised targets are the same numbers, so the network learns the same function.
    np.testing.assert_allclose(predicted / scale, ordinary, rtol=1e-4, atol=1e-4 * np.abs(ordinary).max())
    assert r2(y, predicted / scale) > 0.9


def test_targets_near_the_float64_limit(data):
    X, y = data
    y = y / np.abs(y).max() * 1.7e308
    predicted = regressor().fit(X, y).predict(X)
    assert np.isfinite(predicted).all() and r2(y / 1e308, predicted / 1e308) > 0.9


def test_one_huge_target_among_ordinary_ones(data):
    X, y = data
    y = y.copy()
    y[0] = 1e20
    reg = regressor().fit(X, y)
    np.testing.assert_allclose(reg.target_mean_, [y.mean()])
    assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize("value", [3.7, -1e20, 0.0, 1e300])
def test_a_constant_target_predicts_exactly_that_constant(data, value):
    X, _ = data
    reg = regressor(max_epochs=3).fit(X, np.full(len(X), value))
    assert reg.target_scale_.tolist() == [1.0]  # StandardScaler's convention
    X_new = np.random.RandomState(1).randn(5, 3) * 10
    assert reg.predict(X_new).tolist() == [value] * 5


def test_a_constant_column_of_multi_output_targets(data):
    X, y = data
    Y = np.column_stack([y, np.full(len(y), -2.5), y * 1e20])
    reg = regressor().fit(X, Y)
    predicted = reg.predict(X)
    assert predicted.shape == Y.shape
    assert np.all(predicted[:, 1] == -2.5)
    assert r2(Y[:, 0], predicted[:, 0]) > 0.9 and r2(Y[:, 2], predicted[:, 2]) > 0.9


def test_a_constant_target_with_init_still_predicts_the_constant(data):
    X, y = data
    source = regressor(max_epochs=2).fit(X, y)
    reg = regressor(max_epochs=2, init=source).fit(X, np.full(len(X), 4.0))
    assert reg.predict(X[:4]).tolist() == [4.0] * 4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_feature_values_are_standardised(data, dtype):
    X, y = data
    ordinary = regressor().fit(X, y).predict(X)
    big = (X * np.array([1e20, 1.0, 1e-20])).astype(dtype)
    predicted = regressor().fit(big, y).predict(big)
    assert np.isfinite(predicted).all()
    assert r2(y, predicted) > 0.9
    if dtype is np.float64:
        np.testing.assert_allclose(predicted, ordinary, rtol=1e-4, atol=1e-4)


def test_features_near_the_float64_limit(data):
    X, y = data
    big = X.copy()
    big[:, 0] = X[:, 0] / np.abs(X[:, 0]).max() * 1.7e308
    predicted = regressor().fit(big, y).predict(big)
    assert np.isfinite(predicted).all() and r2(y, predicted) > 0.9


def test_features_beyond_float32_after_standardising_are_refused_clearly(data):
    X, y = data
    reg = regressor(max_epochs=1).fit(X, y)
    far = X[:3].copy()
    far[1, 2] = 1e300
    with pytest.raises(ValueError, match=r"X columns \[2\].*Rescale or clip"):
        reg.predict(far)
