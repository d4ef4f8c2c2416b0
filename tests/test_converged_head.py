"""A head on frozen features is solved to convergence: it matches scikit-learn's
LogisticRegression (and Ridge) fitted on the same features."""

import numpy as np
import pytest
import torch.nn as nn
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from sktransfer import TransferClassifier, TransferEmbedder, TransferRegressor


def _features(X):
    # The frozen backbone here is the identity: its features are the adapter's standardised X.
    return TransferEmbedder(nn.Identity()).fit(X).transform(X)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("n_per_class", [8, 16, 64])
def test_frozen_head_matches_logistic_regression(n_per_class, n_classes):
    n = n_per_class * n_classes
    X, y = make_classification(n_samples=n + 600, n_features=20, n_informative=8, n_classes=n_classes,
                               class_sep=0.8, random_state=n_per_class)
    X_train, y_train, X_test, y_test = X[:n], y[:n], X[-600:], y[-600:]
    clf = TransferClassifier(nn.Identity(), strategy="head", random_state=0).fit(X_train, y_train)
    features = TransferEmbedder(nn.Identity()).fit(X_train)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(features.transform(X_train), y_train)
    ours, theirs = clf.score(X_test, y_test), lr.score(features.transform(X_test), y_test)
    assert abs(ours - theirs) <= 0.005
    # The same objective: the probabilities agree too.
    np.testing.assert_allclose(clf.predict_proba(X_test), lr.predict_proba(features.transform(X_test)), atol=5e-3)


def test_frozen_regression_head_matches_ridge():
    X, y = make_regression(n_samples=640, n_features=15, noise=10.0, random_state=0)
    X_train, y_train, X_test, y_test = X[:40], y[:40], X[40:], y[40:]
    reg = TransferRegressor(nn.Identity(), strategy="head", random_state=0).fit(X_train, y_train)
    features = TransferEmbedder(nn.Identity()).fit(X_train)
    # Our targets are standardised: Ridge on the standardised targets, mapped back, is the same model.
    mean, scale = y_train.mean(), y_train.std()
    ridge = Ridge(alpha=1.0).fit(features.transform(X_train), (y_train - mean) / scale)
    theirs = r2_score(y_test, ridge.predict(features.transform(X_test)) * scale + mean)
    assert abs(reg.score(X_test, y_test) - theirs) <= 0.01


def test_the_adam_head_is_still_there_and_c_sets_the_penalty():
    X, y = make_classification(n_samples=60, n_features=10, random_state=1)
    strong = TransferClassifier(nn.Identity(), strategy="head", C=1e-3, random_state=0).fit(X, y)
    weak = TransferClassifier(nn.Identity(), strategy="head", C=1e3, random_state=0).fit(X, y)
    assert np.abs(strong.net_.module_.head.weight.detach().numpy()).max() < \
        np.abs(weak.net_.module_.head.weight.detach().numpy()).max() / 10
    adam = TransferClassifier(nn.Identity(), strategy="head", head_solver="optimizer", max_epochs=2,
                              random_state=0).fit(X, y)
    assert type(adam.net_.optimizer_).__name__ == "AdamW"
    assert type(weak.net_.optimizer_).__name__ == "LBFGS"


def test_frozen_head_matches_logistic_regression_at_full_size():
    X, y = make_classification(n_samples=4600, n_features=20, n_informative=8, n_classes=3, random_state=5)
    X_train, y_train, X_test, y_test = X[:4000], y[:4000], X[4000:], y[4000:]
    clf = TransferClassifier(nn.Identity(), strategy="head", random_state=0).fit(X_train, y_train)
    features = TransferEmbedder(nn.Identity()).fit(X_train)
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(features.transform(X_train), y_train)
    assert abs(clf.score(X_test, y_test) - lr.score(features.transform(X_test), y_test)) <= 0.005


def test_multilabel_head_matches_one_logistic_regression_per_label():
    X, y = make_multilabel_classification(n_samples=640, n_features=15, n_classes=3, random_state=2)
    X_train, y_train, X_test = X[:40], y[:40], X[40:]
    clf = TransferClassifier(nn.Identity(), strategy="head", random_state=0).fit(X_train, y_train)
    features = TransferEmbedder(nn.Identity()).fit(X_train)
    theirs = np.column_stack([
        LogisticRegression(C=1.0, max_iter=1000).fit(features.transform(X_train), y_train[:, j])
        .predict_proba(features.transform(X_test))[:, 1]
        for j in range(y.shape[1])
    ])
    np.testing.assert_allclose(clf.predict_proba(X_test), theirs, atol=5e-3)


def _layer_norm(Z):
    return (Z - Z.mean(1, keepdims=True)) / np.sqrt(Z.var(1, keepdims=True) + 1e-5)


@pytest.mark.parametrize("n", [16, 128])
def test_fused_frozen_head_matches_logistic_regression_on_the_normalised_branches(n):
    X, y = make_classification(n_samples=n + 400, n_features=12, n_informative=6, random_state=0)
    split = {"a": X[:, :6], "b": X[:, 6:]}
    train = {key: value[:n] for key, value in split.items()}
    test = {key: value[n:] for key, value in split.items()}
    clf = TransferClassifier({"a": "passthrough", "b": "passthrough"}, strategy="head", random_state=0)
    clf.fit(train, y[:n])
    # Each passthrough branch standardises its columns, then the fusion layer-normalises it.
    scalers = {key: StandardScaler().fit(value) for key, value in train.items()}

    def features(data):
        return np.hstack([_layer_norm(scalers[key].transform(data[key])) for key in ("a", "b")])

    lr = LogisticRegression(C=1.0, max_iter=1000).fit(features(train), y[:n])
    np.testing.assert_allclose(clf.predict_proba(test), lr.predict_proba(features(test)), atol=5e-3)
    assert abs(clf.score(test, y[n:]) - lr.score(features(test), y[n:])) <= 0.005
