"""Text augmentation: seeded word dropout and span deletion, user callables, clear errors."""

import numpy as np
import pytest
import torch

from sktransfer import TransferClassifier, TransferRegressor
from sktransfer._inputs.text_augment import SpanDeletion, WordDropout

TEXT = "the quick brown fox jumps over the lazy dog today"


def test_word_dropout_deletes_words_and_is_seeded():
    torch.manual_seed(0)
    first = [WordDropout(0.3)(TEXT) for _ in range(20)]
    torch.manual_seed(0)
    assert [WordDropout(0.3)(TEXT) for _ in range(20)] == first
    words = TEXT.split()
    for text in first:
        kept = text.split()
        assert 1 <= len(kept) <= len(words)
        it = iter(words)
        assert all(word in it for word in kept)  # an order-preserving subsequence
    assert any(len(text.split()) < len(words) for text in first)
    assert WordDropout(1.0)("one two") in ("one", "two")  # never empties a text
    assert WordDropout(0.5)("single") == "single"


def test_span_deletion_removes_one_contiguous_span():
    torch.manual_seed(1)
    words = TEXT.split()
    for _ in range(20):
        kept = SpanDeletion(0.3)(TEXT).split()
        removed = len(words) - len(kept)
        assert 1 <= removed <= 3
        start = next((i for i, (a, b) in enumerate(zip(words, kept)) if a != b), len(kept))
        assert words[:start] + words[start + removed:] == kept
    assert SpanDeletion(0.2)("two words") == "two words"  # too short for a span


def test_augmented_fit_is_reproducible_and_differs_from_no_augmentation(sentences):
    texts, y = sentences
    y = (np.asarray(y) == "pos").astype(float)

    def fit(augment):
        reg = TransferRegressor("all-MiniLM-L6-v2", augment=augment, max_epochs=2, batch_size=4, random_state=0)
        return reg.fit(texts, y).predict(texts)

    word = fit("word_dropout")
    np.testing.assert_array_equal(word, fit("word_dropout"))
    assert not np.array_equal(word, fit(None))
    assert not np.array_equal(word, fit("span_deletion"))


def test_a_callable_sees_every_training_text_and_never_predictions(sentences):
    texts, y = sentences
    seen = []

    def shout(text):
        seen.append(text)
        return text.upper()

    clf = TransferClassifier("all-MiniLM-L6-v2", augment=shout, max_epochs=1, batch_size=4, random_state=0)
    clf.fit(texts, y)
    assert sorted(seen) == sorted(texts)  # one epoch, each training text once
    seen.clear()
    clf.predict(texts)
    assert seen == []


def test_text_augmentation_errors_name_the_fix(sentences):
    texts, y = sentences
    with pytest.raises(TypeError, match="must return a str"):
        TransferClassifier("all-MiniLM-L6-v2", augment=lambda t: None, max_epochs=1).fit(texts, y)
    with pytest.raises(ValueError, match="augment='mixup' is for image backbones.*'word_dropout'"):
        TransferClassifier("all-MiniLM-L6-v2", augment="mixup").fit(texts, y)
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="augment='word_dropout' is for text backbones"):
        TransferClassifier("resnet18", pretrained=False, augment="word_dropout").fit(images, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="defined for image and text backbones only.*Use augment=None"):
        TransferRegressor("mlp", augment=str.upper).fit(np.zeros((4, 3)), [0.0, 1.0, 0.0, 1.0])
