"""long_text="chunk": texts longer than max_length run as overlapping windows, pooled per text."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import TransferClassifier, TransferEmbedder, TransferRegressor, load
from sktransfer._features.stores import MemoryFeatureStore
from sktransfer._inputs.text import MAX_WINDOWS, window_stride, windows_batch
from sktransfer._nn.pooling import WINDOW_MASK, pool_windows, split_windows
from sktransfer._persistence.model_files import _config_checksum

MINILM = "all-MiniLM-L6-v2"
MAX_LENGTH = 16  # 14 text tokens per window: the texts below span several
SHORT = ["A fine film.", "Dull and slow.", "Great acting!"]
FILLER = "the plot moves on and on " * 6  # about 36 tokens: the last word sits in a later window
LONG_GOOD = FILLER + "and in the end it is wonderful"
LONG_BAD = FILLER + "and in the end it is terrible"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-layer BERT of width 32 with MiniLM's tokenizer, saved as a backbone directory."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sktransfer.backbones.huggingface import minilm_path

    path = tmp_path_factory.mktemp("tiny-bert")
    AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True).save_pretrained(path)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(path)
    return str(path)


def embed(texts, backbone, **params):
    params.setdefault("feature_cache", None)
    return TransferEmbedder(backbone, max_length=MAX_LENGTH, **params).fit(texts).transform(texts)


# ------------------------------------------------------------------ the batch and the pooling
def test_windows_overlap_and_keep_one_row_per_text(tiny):
    from sktransfer.backbones.huggingface import load_tokenizer

    tokenizer = load_tokenizer(MINILM)
    adapter_batch = TransferEmbedder(tiny, max_length=MAX_LENGTH, long_text="chunk").fit(SHORT).adapter_
    batch = adapter_batch.collate_fn.encode([LONG_GOOD, "short"])
    mask = batch[WINDOW_MASK]
    assert batch["input_ids"].shape[:2] == mask.shape and mask.shape[0] == 2  # skorch counts texts, not windows
    assert mask[0].sum() > 1 and mask[1].tolist() == [True] + [False] * (mask.shape[1] - 1)
    # Neighbouring windows share tokens (transformers' stride), and nothing of the text is lost.
    first, second = (batch["input_ids"][0, j][batch["attention_mask"][0, j].bool()].tolist()[1:-1] for j in (0, 1))
    overlap = window_stride(tokenizer, MAX_LENGTH)
    assert overlap == MAX_LENGTH // 4 and first[-overlap:] == second[:overlap] and first[-overlap - 1] != second[0]
    text_ids = tokenizer(LONG_GOOD, add_special_tokens=False)["input_ids"]
    last = batch["input_ids"][0, int(mask[0].sum()) - 1]
    assert last[batch["attention_mask"][0, int(mask[0].sum()) - 1].bool()].tolist()[-2] == text_ids[-1]


def test_windows_per_text_are_capped():
    from sktransfer.backbones.huggingface import load_tokenizer

    tokenizer = load_tokenizer(MINILM)
    encoded = tokenizer(["word " * 400, "x"], padding="longest", truncation=True, max_length=8, stride=2,
                        return_overflowing_tokens=True, return_tensors="pt")
    batch = windows_batch(encoded, 2)
    assert batch[WINDOW_MASK].shape == (2, MAX_WINDOWS)
    assert batch[WINDOW_MASK].sum(1).tolist() == [MAX_WINDOWS, 1]


def test_pool_windows_mean_max_and_gradients():
    mask = torch.tensor([[True, True, True], [True, False, False]])
    features = torch.tensor([[1.0, -1.0], [3.0, 0.0], [2.0, 4.0], [5.0, 6.0]], requires_grad=True)
    mean = pool_windows(features, mask, "mean")
    assert torch.allclose(mean, torch.tensor([[2.0, 1.0], [5.0, 6.0]]))
    assert torch.equal(pool_windows(features, mask, "max"), torch.tensor([[3.0, 4.0], [5.0, 6.0]]))
    mean.sum().backward()  # every window of a text gets 1 / (its windows)
    assert torch.allclose(features.grad[:, 0], torch.tensor([1 / 3, 1 / 3, 1 / 3, 1.0]))
    flat, found = split_windows({"input_ids": torch.arange(12).reshape(2, 3, 2), WINDOW_MASK: mask})
    assert found is mask and flat["input_ids"].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]


# ------------------------------------------------------------------ features
def test_chunk_reads_past_the_first_window():
    truncated = embed([LONG_GOOD, LONG_BAD], MINILM)
    chunked = embed([LONG_GOOD, LONG_BAD], MINILM, long_text="chunk")
    assert np.array_equal(truncated[0], truncated[1])  # the decisive word was cut off
    assert not np.allclose(chunked[0], chunked[1], atol=1e-4)


@pytest.mark.parametrize("chunk_pooling", ["mean", "max"])
def test_short_texts_are_exactly_the_truncated_features(chunk_pooling, tiny):
    assert np.array_equal(embed(SHORT, tiny), embed(SHORT, tiny, long_text="chunk", chunk_pooling=chunk_pooling))
    # Stages (layers=) pool their windows the same way.
    assert np.array_equal(embed(SHORT, tiny, layers=[-2]), embed(SHORT, tiny, layers=[-2], long_text="chunk"))


def test_mean_and_max_pooling_differ_on_long_texts(tiny):
    mean = embed([LONG_GOOD], tiny, long_text="chunk", chunk_pooling="mean")
    maximum = embed([LONG_GOOD], tiny, long_text="chunk", chunk_pooling="max")
    assert not np.allclose(mean, maximum, atol=1e-4)
    staged = embed([LONG_GOOD], tiny, long_text="chunk", chunk_pooling="max", layers=[-1])
    assert np.allclose(staged, maximum, atol=1e-5)  # the last stage is the final features


def test_feature_cache_never_mixes_truncated_and_chunked(tmp_path, tiny):
    store = tmp_path / "features"
    texts = [LONG_GOOD, LONG_BAD, *SHORT]
    fitted = {
        (long_text, pooling): TransferEmbedder(tiny, max_length=MAX_LENGTH, long_text=long_text,
                                               chunk_pooling=pooling, feature_cache=store).fit(texts)
        for long_text in ("truncate", "chunk") for pooling in ("mean", "max")
    }
    prints = {key: e.feature_fingerprint_ for key, e in fitted.items()}
    # chunk_pooling means nothing when truncating: those features stay shared.
    assert prints["truncate", "mean"] == prints["truncate", "max"]
    assert len({prints["truncate", "mean"], prints["chunk", "mean"], prints["chunk", "max"]}) == 3
    for key, embedder in fitted.items():  # each read (the second time from the cache) is its own kind
        assert np.allclose(embedder.transform(texts), embed(texts, tiny, long_text=key[0], chunk_pooling=key[1]),
                           atol=1e-5)
        assert np.allclose(embedder.transform(texts), embed(texts, tiny, long_text=key[0], chunk_pooling=key[1]),
                           atol=1e-5)


# ------------------------------------------------------------------ estimators
@pytest.fixture(scope="module")
def long_texts():
    X = [LONG_GOOD, LONG_BAD, FILLER + "a joy to watch", FILLER + "a waste of time", *SHORT]
    y = ["pos", "neg", "pos", "neg", "pos", "neg", "pos"]
    return X, np.array(y)


def test_frozen_fit_and_predict_cache_chunked_features(long_texts, monkeypatch, tiny):
    X, y = long_texts
    store = MemoryFeatureStore()
    def get_store(feature_cache):
        return None if feature_cache is None else store

    monkeypatch.setattr("sktransfer._build.branch.get_store", get_store)  # where fit keys the features
    monkeypatch.setattr("sktransfer._features.extraction.get_store", get_store)  # where they are read
    clf = TransferClassifier(tiny, strategy="head", max_length=MAX_LENGTH, long_text="chunk",
                             chunk_pooling="max", max_epochs=3, batch_size=4, random_state=0).fit(X, y)
    assert len(store) == len(X)  # one feature row per text, not per window
    proba = clf.predict_proba(X)
    assert len(store) == len(X)  # predict read them back
    truncating = TransferClassifier(tiny, strategy="head", max_length=MAX_LENGTH, max_epochs=1).fit(X, y)
    assert truncating.feature_fingerprint_ != clf.feature_fingerprint_
    assert len(store) == 2 * len(X)  # truncated rows of their own, not the chunked ones
    assert proba.shape == (len(X), 2) and np.isfinite(proba).all()
    assert clf.net_.module_.chunk_pooling == "max"
    # Predictions without the cache (the backbone run on windows) agree with the cached features.
    direct = clf.set_params(feature_cache=None)
    direct.feature_fingerprint_ = None
    assert np.allclose(direct.predict_proba(X), proba, atol=1e-5)


@pytest.mark.parametrize("layers", [None, [-1]])
def test_finetuning_trains_on_windows(long_texts, layers, tiny):
    X, y = long_texts
    clf = TransferRegressor(tiny, strategy="full", max_length=MAX_LENGTH, long_text="chunk", layers=layers,
                            max_epochs=1, batch_size=4, lr=1e-2, random_state=0)
    before = TransferEmbedder(tiny, max_length=MAX_LENGTH).fit(SHORT).module_.backbone.state_dict()
    clf.fit(X, (y == "pos").astype(float))
    after = clf.net_.module_.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # gradients reached the backbone
    assert clf.predict(X).shape == (len(X),) and np.isfinite(clf.predict(X)).all()
    # Each epoch's loss is averaged over texts: skorch counted one row per text in each batch.
    assert clf.net_.history[-1, "batches", 0, "train_batch_size"] == 4


def test_fused_text_branch_chunks(long_texts, tiny):
    X, y = long_texts
    frame = pd.DataFrame({"text": X, "size": np.arange(len(X), dtype=float)})
    clf = TransferClassifier({"text": tiny, "size": "passthrough"}, strategy="full", max_length=MAX_LENGTH,
                             long_text="chunk", max_epochs=1, batch_size=4, random_state=0).fit(frame, y)
    assert clf.predict(frame).shape == (len(X),)
    features = TransferEmbedder({"text": tiny, "size": "passthrough"}, max_length=MAX_LENGTH, long_text="chunk",
                                feature_cache=None).fit_transform(frame)
    assert np.allclose(features[:, :-1], embed(X, tiny, long_text="chunk"), atol=1e-5)


def test_model_file_round_trip(long_texts, tmp_path, tiny):
    X, y = long_texts
    clf = TransferClassifier(tiny, strategy="head", max_length=MAX_LENGTH, long_text="chunk", chunk_pooling="max",
                             max_epochs=2, random_state=0).fit(X, y)
    path = clf.save_pretrained(tmp_path / "model")
    state = json.loads((path / "config.json").read_text())["adapter"]
    assert state["long_text"] == "chunk" and state["chunk_pooling"] == "max"
    loaded = load(path)
    assert loaded.adapter_.long_text == "chunk" and loaded.adapter_.chunk_pooling == "max"
    assert loaded.net_.module_.chunk_pooling == "max"
    assert np.allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-5)

    # Files written before long_text existed load as truncating.
    config = json.loads((path / "config.json").read_text())
    for key in ("long_text", "chunk_pooling"):
        del config["adapter"][key]
        config["params"].pop(key)
    config["checksum"] = _config_checksum(config)
    (path / "config.json").write_text(json.dumps(config))
    old = load(path)
    assert old.adapter_.long_text == "truncate" and old.long_text == "truncate"
    assert old.net_.module_.chunk_pooling == "mean"


# ------------------------------------------------------------------ errors
def test_long_text_on_other_backbones_names_the_fix():
    X = np.random.RandomState(0).normal(size=(8, 3))
    with pytest.raises(ValueError, match=r"long_text='chunk' applies to text backbones.*long_text='truncate'"):
        TransferRegressor("mlp", long_text="chunk", max_epochs=1).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="long_text='chunk' applies to text backbones"):
        TransferEmbedder("mlp", long_text="chunk").fit(X)
    TransferRegressor("mlp", chunk_pooling="max", max_epochs=1).fit(X, X[:, 0])  # ignored when truncating


def test_bad_values_and_too_small_windows(tiny):
    with pytest.raises(InvalidParameterError, match="long_text"):
        TransferClassifier(tiny, long_text="split").fit(SHORT, [0, 1, 0])
    with pytest.raises(InvalidParameterError, match="chunk_pooling"):
        TransferEmbedder(tiny, chunk_pooling="sum").fit(SHORT)
    with pytest.raises(ValueError, match=r"needs windows of at least 4 tokens.*max_length=3"):
        TransferEmbedder(tiny, max_length=3, long_text="chunk").fit(SHORT)
