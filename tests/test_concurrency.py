"""Threads predicting with one fitted estimator get what sequential calls get."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sktransfer import TransferClassifier, TransferRegressor

N_THREADS = 6


def predict_in_threads(method, chunks):
    """Sequential answers, then the same calls from several threads at once (each chunk
    three times, interleaved, so calls overlap)."""
    sequential = [method(chunk) for chunk in chunks]
    with ThreadPoolExecutor(N_THREADS) as pool:
        concurrent = list(pool.map(method, chunks * 3))
    return sequential * 3, concurrent


def assert_same(sequential, concurrent):
    assert len(sequential) == len(concurrent)
    for expected, got in zip(sequential, concurrent):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("strategy", ["head", "full"])
def test_text_predictions_from_threads(sentences, strategy):
    texts, labels = sentences
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy=strategy, max_epochs=1, batch_size=4, random_state=0)
    clf.fit(texts, labels)
    # Chunks of different lengths: the shared tokenizer pads and truncates each call differently.
    chunks = [texts[i::5] + ["a much longer sentence " * (i + 1)] for i in range(5)]
    assert_same(*predict_in_threads(clf.predict_proba, chunks))


def test_image_predictions_with_stages_from_threads(digits):
    X, y = digits
    clf = TransferClassifier(
        "resnet18", pretrained=False, image_size=16, strategy="full", layers=[-2, -1], max_epochs=1,
        batch_size=8, random_state=0, feature_cache=None,
    ).fit(X, y)
    chunks = [X[i::4] for i in range(4)]
    assert_same(*predict_in_threads(clf.predict_proba, chunks))


def test_frozen_predictions_sharing_the_feature_cache_from_threads(digits):
    X, y = digits
    clf = TransferClassifier("resnet18", pretrained=False, image_size=16, strategy="head", max_epochs=1,
                             random_state=0).fit(X[:24], y[:24])
    # Rows not cached yet: threads compute and store them at the same time.
    chunks = [X[24 + i :: 3] for i in range(3)] + [X[:24]]
    sequential = [clf.predict_proba(chunk) for chunk in chunks]
    from sktransfer._features.stores import memory_store

    memory_store().clear()
    with ThreadPoolExecutor(N_THREADS) as pool:
        concurrent = list(pool.map(clf.predict_proba, chunks * 3))
    assert_same(sequential * 3, concurrent)


def test_tabular_regression_from_threads():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    reg = TransferRegressor("mlp", max_epochs=2, random_state=0).fit(X, y)
    chunks = [X[i::4] for i in range(4)]
    assert_same(*predict_in_threads(reg.predict, chunks))
