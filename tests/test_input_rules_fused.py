"""Fusion, embedder, stores and parameters: each fault raises its documented error that
names the column, store or parameter; the previous model predicts as before and the
caller's inputs are byte-identical afterwards."""

import os
import pickle

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from sktransfer import Branch, MemoryFeatureStore, TransferClassifier, TransferEmbedder, TransferRegressor, load
from sktransfer.exceptions import InvalidInputError

pd = pytest.importorskip("pandas")

MAPPING = {"text": "all-MiniLM-L6-v2", "size": "passthrough"}


@pytest.fixture(scope="module")
def frame(sentences):
    texts, labels = sentences
    return pd.DataFrame({"text": texts, "size": np.arange(len(texts), dtype=float)}), labels


@pytest.fixture(scope="module")
def fused(frame):
    X, y = frame
    clf = TransferClassifier(MAPPING, strategy="head", max_epochs=2, random_state=0).fit(X, y)
    return clf, clf.predict_proba(X)


def refit_fails(fused, frame, X, error, match):
    """A refit on ``X`` raises ``error``; the model and ``X`` are as they were."""
    clf, before = fused
    inputs = pickle.dumps(X)
    net = clf.net_
    with pytest.raises(error, match=match):
        clf.fit(X, frame[1])
    assert pickle.dumps(X) == inputs, "fit changed the caller's data"
    assert clf.net_ is net
    np.testing.assert_array_equal(clf.predict_proba(frame[0]), before)


def test_duplicate_column_names_are_named(fused, frame):
    X = pd.concat([frame[0], frame[0][["size"]]], axis=1)
    refit_fails(fused, frame, X, InvalidInputError, r"several columns named \['size'\].*unique name")


def test_none_in_a_text_column_names_the_column(fused, frame):
    X = frame[0].assign(text=[None, *frame[0]["text"][1:]])
    refit_fails(fused, frame, X, InvalidInputError, r"column 'text' \(all-MiniLM-L6-v2\): X\[0\] is missing")


def test_pandas_na_in_a_text_column_is_missing(fused, frame):
    X = frame[0].assign(text=pd.array([*frame[0]["text"][:-1], pd.NA], dtype="string"))
    refit_fails(fused, frame, X, InvalidInputError, r"column 'text' .*X\[23\] is missing")


@pytest.mark.parametrize("values, match", [
    (["x", *range(23)], r"column 'size' \(passthrough\) holds values that are not numbers: \['x'\] in rows \[0\]"),
    (pd.array([pd.NA, *range(23)], dtype="Int64"), r"column 'size' \(passthrough\) has missing values .* rows \[0\]"),
    (pd.Series([*range(5), pd.NA, *range(18)], dtype=object), r"column 'size' .* missing values .* rows \[5\]"),
    ([*range(3), None, *range(20)], r"column 'size' .* missing values .* rows \[3\]"),
])
def test_bad_passthrough_values_name_the_column_and_rows(fused, frame, values, match):
    refit_fails(fused, frame, frame[0].assign(size=values), InvalidInputError, match)


def test_bad_passthrough_values_at_predict_name_the_column(fused, frame):
    clf, _ = fused
    with pytest.raises(InvalidInputError, match=r"column 'size' \(passthrough\) holds values that are not numbers"):
        clf.predict(frame[0].assign(size=["big", *range(23)]))


def test_numeric_strings_still_pass_through(frame):
    X = frame[0].assign(size=[str(v) for v in range(24)])
    clf = TransferClassifier(MAPPING, strategy="head", max_epochs=1, random_state=0).fit(X, frame[1])
    assert clf.predict(X).shape == (24,)


# ------------------------------------------------------------------ embedder output
def test_reloaded_column_mapped_embedder_keeps_pandas_output(frame, tmp_path):
    X, _ = frame
    emb = TransferEmbedder(MAPPING).set_output(transform="pandas").fit(X)
    expected = emb.transform(X)
    assert isinstance(expected, pd.DataFrame)
    loaded = load(emb.save_pretrained(tmp_path / "emb"), device="cpu")
    got = loaded.transform(X)
    assert isinstance(got, pd.DataFrame)
    pd.testing.assert_frame_equal(got, expected)


def test_reloaded_embedder_without_set_output_returns_arrays(sentences, tmp_path):
    texts, _ = sentences
    emb = TransferEmbedder("all-MiniLM-L6-v2").fit(texts)
    loaded = load(emb.save_pretrained(tmp_path / "emb"), device="cpu")
    assert isinstance(loaded.transform(texts), np.ndarray)


# ------------------------------------------------------------------ feature_cache URLs
def test_feature_cache_url_string_uses_fsspec(sentences, tmp_path, monkeypatch):
    pytest.importorskip("fsspec")
    import fsspec

    texts, labels = sentences
    monkeypatch.chdir(tmp_path)
    url = f"memory://sktransfer-url-{os.getpid()}"
    TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1, feature_cache=url).fit(texts, labels)
    assert list(tmp_path.iterdir()) == [], "a local folder named 'memory:' was created"
    assert fsspec.filesystem("memory").find(url.removeprefix("memory://"))
    fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


# ------------------------------------------------------------------ parameters
X_TAB = np.random.RandomState(0).normal(size=(24, 3))
Y_TAB = np.array(["a", "b"] * 12)


@pytest.mark.parametrize("params, name", [
    ({"lora_rank": True}, "lora_rank"), ({"batch_size": True}, "batch_size"), ({"lr": True}, "lr"),
    ({"max_epochs": True}, "max_epochs"), ({"layers": True}, "layers"),
])
def test_booleans_are_not_numbers(params, name):
    with pytest.raises(ValueError, match=rf"'{name}' parameter of TransferClassifier must be .*not the boolean"):
        TransferClassifier("mlp", **params).fit(X_TAB, Y_TAB)


def test_booleans_in_a_branch_are_not_numbers(frame):
    clf = TransferClassifier({"text": Branch("all-MiniLM-L6-v2", trainable_blocks=True), "size": "passthrough"})
    with pytest.raises(ValueError, match=r"branch 'text'.*'trainable_blocks' parameter of Branch.*boolean"):
        clf.fit(*frame)


def test_grid_search_with_numpy_numbers():
    grid = {"batch_size": np.array([8, 16]), "max_epochs": np.arange(1, 3), "lr": np.array([1e-3]),
            "weight_decay": np.array([0.0, 0.01], dtype=np.float32)}
    search = GridSearchCV(TransferRegressor("mlp", random_state=0), grid, cv=2, error_score="raise")
    search.fit(X_TAB, X_TAB[:, 0])
    assert len(search.cv_results_["params"]) == 8
    assert search.best_estimator_.predict(X_TAB).shape == (24,)


def test_numpy_batch_size_predicts_and_embeds(sentences):
    texts, labels = sentences
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=np.int64(1), batch_size=np.int64(8),
                             head_epochs=np.int64(0)).fit(texts, labels)
    assert clf.predict(texts).shape == (24,)
    emb = TransferEmbedder("all-MiniLM-L6-v2", batch_size=np.int32(4)).fit(texts)
    assert emb.transform(texts).shape[0] == 24


# ------------------------------------------------------------------ stores
class NaNStore(MemoryFeatureStore):
    """A user's store whose copies of the rows went bad."""

    def get_many(self, keys):
        return {key: np.full_like(row, np.nan) for key, row in super().get_many(keys).items()}

    def __repr__(self):
        return "NaNStore()"


def test_nan_rows_from_a_store_name_the_store(sentences):
    texts, labels = sentences
    store = NaNStore()
    TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1, feature_cache=store).fit(texts, labels)
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=1).fit(texts, labels)
    before = clf.predict_proba(texts)
    inputs = pickle.dumps(texts)
    net = clf.net_
    clf.set_params(feature_cache=store)  # the rows come back NaN now
    with pytest.raises(ValueError, match=r"feature_cache=NaNStore\(\): get_many returned a row holding \d+ NaN"):
        clf.fit(texts, labels)
    assert pickle.dumps(texts) == inputs and clf.net_ is net
    clf.set_params(feature_cache="memory")
    np.testing.assert_array_equal(clf.predict_proba(texts), before)
