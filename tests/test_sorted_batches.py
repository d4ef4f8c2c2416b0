"""Texts run longest first at inference (predict, transform, feature extraction), as
sentence-transformers' encode does: fewer padding tokens, the same outputs, in the caller's order."""

import numpy as np
import pytest
import torch

from sktransfer import TransferClassifier, TransferEmbedder
from sktransfer._features.stores import MemoryFeatureStore
from sktransfer._inputs import ImageAdapter, TextAdapter
from sktransfer._inputs.text import TextCollate

MAX_LENGTH = 24
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "it", "rains", "on", "the",
         "quiet", "town"]
# Lengths from 1 word to past max_length, shuffled: unsorted batches pad to a long text each.
TEXTS = [" ".join(WORDS[: 1 + (7 * i) % 15] * (1 + (i % 3))) for i in range(23)]
LABELS = np.array([i % 2 for i in range(len(TEXTS))])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A two-layer BERT of width 32 with MiniLM's tokenizer, saved as a backbone directory."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sktransfer.backbones.huggingface import minilm_path

    path = tmp_path_factory.mktemp("tiny-bert-sorted")
    AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True).save_pretrained(path)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        BertModel(config).save_pretrained(path)
    return str(path)


@pytest.fixture
def unsorted(monkeypatch):
    """Switch the sorting off: every sample runs in the caller's order, as before."""
    def switch_off():
        monkeypatch.setattr(TextAdapter, "inference_order", lambda self, X, indices: None)
    return switch_off


@pytest.fixture
def padded_tokens(monkeypatch):
    """The tokens (padding included) of every batch the text collate builds, summed."""
    seen = []
    encode = TextCollate.encode

    def counting(self, texts):
        batch = encode(self, texts)
        seen.append(batch["input_ids"].numel())
        return batch

    monkeypatch.setattr(TextCollate, "encode", counting)
    return seen


def tokenizer():
    from sktransfer.backbones.huggingface import load_tokenizer

    return load_tokenizer("all-MiniLM-L6-v2")


def test_order_is_longest_first_by_tokens_truncated_to_max_length():
    adapter = TextAdapter("tiny", tokenizer(), max_length=8)
    texts = ["one two three four five six seven eight nine ten", "a", "a b c", "one two three four five six seven"]
    counts = adapter.collate_fn.token_counts(texts)
    assert counts.tolist() == [8, 3, 5, 8]  # [CLS] and [SEP] count; the two long ones are cut at 8
    assert adapter.inference_order(texts, range(4)).tolist() == [0, 3, 2, 1]  # ties keep the caller's order
    assert adapter.inference_order(texts, [1, 2]).tolist() == [1, 0]  # positions into the indices given


def test_chunked_texts_count_every_window_they_keep():
    adapter = TextAdapter("tiny", tokenizer(), max_length=8, long_text="chunk")
    long, longer = " ".join(["word"] * 12), " ".join(["word"] * 30)
    counts = adapter.collate_fn.token_counts(["short text", long, longer])
    assert counts[0] == 4 and 8 < counts[1] < counts[2]
    assert adapter.inference_order(["short text", long, longer], range(3)).tolist() == [2, 1, 0]


def test_image_adapters_keep_the_callers_order():
    assert ImageAdapter.inference_order(object.__new__(ImageAdapter), [0, 1, 2], range(3)) is None


def test_transform_equals_the_unsorted_run_with_far_less_padding(tiny, unsorted, padded_tokens):
    embedder = TransferEmbedder(tiny, max_length=MAX_LENGTH, batch_size=4, feature_cache=None).fit(TEXTS)
    padded_tokens.clear()
    got = embedder.transform(TEXTS)
    sorted_tokens = sum(padded_tokens)
    unsorted()
    padded_tokens.clear()
    expected = embedder.transform(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert sorted_tokens < 0.8 * sum(padded_tokens), (sorted_tokens, sum(padded_tokens))


def test_cached_features_come_back_in_the_callers_order(tiny, unsorted):
    store = MemoryFeatureStore()
    embedder = TransferEmbedder(tiny, max_length=MAX_LENGTH, batch_size=4, feature_cache=store).fit(TEXTS[:5])
    part = embedder.transform(TEXTS[::2])  # some rows now cached: the rest are extracted, sorted, among them
    whole = embedder.transform(TEXTS[::-1])
    unsorted()
    plain = TransferEmbedder(tiny, max_length=MAX_LENGTH, batch_size=4, feature_cache=None).fit(TEXTS[:5])
    expected = plain.transform(TEXTS)
    np.testing.assert_allclose(whole, expected[::-1], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(part, expected[::2], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("strategy", ["full", "head"])
def test_predict_proba_equals_the_unsorted_run_in_the_callers_order(tiny, unsorted, strategy):
    clf = TransferClassifier(tiny, strategy=strategy, max_length=MAX_LENGTH, batch_size=4, max_epochs=1,
                             random_state=0, feature_cache=None).fit(TEXTS, LABELS)
    got = clf.predict_proba(TEXTS)
    unsorted()
    np.testing.assert_allclose(got, clf.predict_proba(TEXTS), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(TEXTS[3:4]), got[3:4], atol=1e-5, rtol=1e-5)
