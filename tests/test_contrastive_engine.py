"""Contrastive tuning (SetFit's first step): pairs drawn from the labels, and the backbone
tuned on them so that same-class features move closer and other-class ones apart."""

import time
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn as nn

from sktransfer._build.user_module import module_spec
from sktransfer._features.extraction import extract_features
from sktransfer._inputs import make_adapter
from sktransfer._nn.module import TransferModule
from sktransfer._training.contrastive import contrastive_tune, sample_pairs


# ------------------------------------------------------------------ pair sampling
def test_pairs_are_seeded():
    y = np.random.default_rng(0).integers(0, 4, 100)
    first, again, other = sample_pairs(y, 500, 7), sample_pairs(y, 500, np.random.default_rng(7)), sample_pairs(y, 500, 8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_targets_are_right_and_partners_never_the_anchor():
    y = np.array(["cat", "dog", "cat", "bird", "dog", "cat", "bird", "dog"])
    left, right, target = sample_pairs(y, 1000, 0)
    assert left.dtype == right.dtype == np.int64 and target.dtype == np.float32
    assert len(left) == len(right) == len(target) == 1000
    assert np.array_equal(target, (y[left] == y[right]).astype(np.float32))
    assert np.all(left != right)


def test_pairs_are_balanced_every_sample_anchoring_k_positives_and_k_negatives():
    rng = np.random.default_rng(1)
    y = rng.permutation(np.repeat([0, 1, 2], [3, 10, 27]))  # imbalanced classes
    k = 5
    left, right, target = sample_pairs(y, 2 * k * len(y), rng)
    assert target.sum() == k * len(y)  # exactly half positive
    assert np.all(np.bincount(left[target == 1], minlength=len(y)) == k)
    assert np.all(np.bincount(left[target == 0], minlength=len(y)) == k)
    # Negative partners spread over the other classes (the small class is drawn, too).
    assert set(y[right[(target == 0) & (y[left] == 2)]]) == {0, 1}
    # Shuffled: positives and negatives interleave.
    assert 0.3 < target[: len(target) // 4].mean() < 0.7


def test_single_sample_classes_get_no_positive_pair():
    y = np.array([0, 0, 0, 1, 1, 2])  # class 2 has one sample
    left, right, target = sample_pairs(y, 600, 0)
    assert target.sum() == 300  # the positive half goes round the other samples
    assert not np.any((target == 1) & ((left == 5) | (right == 5)))
    assert np.sum(left[target == 0] == 5) > 0  # its negative pairs are kept
    # Every class a singleton: nothing to pull together, all pairs negative.
    left, right, target = sample_pairs(np.arange(5), 40, 0)
    assert target.sum() == 0 and np.all(left != right)


def test_pairs_are_bounded_on_40000_labels():
    y = np.random.default_rng(0).integers(0, 10, 40_000)
    n_pairs = 2 * 20 * len(y)  # SetFit's default num_iterations=20: 1.6 million pairs
    seconds = min(_timed(sample_pairs, y, n_pairs, s) for s in range(3))
    assert seconds < 1.0
    # Memory: O(n + n_pairs), never the 1.6e9 pairs of all combinations.
    tracemalloc.start()
    try:
        left, _, _ = sample_pairs(y, 10_000, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(left) == 10_000 and peak < 4_000_000  # about 40 bytes a label at most (int64 rows, order)


def _timed(f, *args):
    start = time.perf_counter()
    f(*args)
    return time.perf_counter() - start


def test_multilabel_targets_are_jaccard_similarities():
    rng = np.random.default_rng(3)
    Y = (rng.random((60, 7)) < 0.25).astype(int)
    Y[0] = Y[1] = 0  # two empty label sets: identical
    left, right, target = sample_pairs(Y, 2000, 0)
    a, b = Y[left].astype(bool), Y[right].astype(bool)
    union = (a | b).sum(1)
    expected = np.where(union > 0, (a & b).sum(1) / np.maximum(union, 1), 1.0)
    np.testing.assert_allclose(target, expected, rtol=1e-6)
    assert np.all(left != right)
    # Half the pairs share a label; the other half are drawn to share none where they can.
    assert 0.5 <= np.mean(target > 0) < 0.6
    # Sparse indicator rows give the same pairs.
    assert all(np.array_equal(p, q) for p, q in zip(sample_pairs(sp.csr_matrix(Y), 2000, 0), (left, right, target)))


@pytest.mark.parametrize("labels, message", [
    (np.linspace(0, 1, 10), "regression"),
    (np.random.default_rng(0).random((10, 2)), "regression"),
    (np.array([[0, 1], [2, 0], [1, 2]]), "one column of classes"),
    (np.ones(5, dtype=int), "two classes"),
    (np.array([[1, 0, 1]] * 4), "same label set"),
    (np.array([1]), "at least 2"),
])
def test_labels_that_cannot_be_paired_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        sample_pairs(labels, 10, 0)


@pytest.mark.parametrize("n_pairs", [0, -3, 2.5, True])
def test_n_pairs_must_be_a_positive_integer(n_pairs):
    with pytest.raises(ValueError, match="n_pairs"):
        sample_pairs(np.array([0, 1, 0, 1]), n_pairs, 0)


# ------------------------------------------------------------------ tuning
class ColourNet(nn.Module):
    """A tiny image body: one convolution, pooled, then a linear layer, whose shared bias
    starts every sample's features leaning the same way (every pair's cosine above 0)."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 8, 3)
            self.proj = nn.Linear(8, 8)
        with torch.no_grad():
            self.proj.bias.fill_(0.3)

    def forward(self, x):
        return self.proj(torch.relu(self.conv(x)).mean((2, 3)))


def colour_images(n=16):
    """Noise images, more red (class 0) or more blue (class 1) than the other, each of its
    own brightness and green: what the class is about starts buried in what it isn't."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    X = rng.uniform(0, 0.4, (n, 1, 1, 1)) + rng.uniform(0, 0.1, (n, 12, 12, 3))
    X[..., 1] += rng.uniform(0, 0.6, (n, 1, 1))
    X[..., 0] += 0.4 * (y == 0)[:, None, None]
    X[..., 2] += 0.4 * (y == 1)[:, None, None]
    return (X / X.max() * 255).astype(np.uint8), y


def image_setup():
    body = ColourNet()
    adapter = make_adapter(module_spec(body, "image"), image_size=12)
    X, y = colour_images()
    return TransferModule(body, 8, 2), adapter, adapter.check(X), y


def pair_cosines(module, adapter, X_checked, y):
    """Mean cosine similarity of same-class and of other-class pairs of distinct samples."""
    features = extract_features(module, adapter.dataset(X_checked), adapter.collate_fn, 64, "cpu")
    unit = torch.nn.functional.normalize(features, dim=1)
    cosine = (unit @ unit.T).numpy()
    same = y[:, None] == y[None, :]
    off = ~np.eye(len(y), dtype=bool)
    return cosine[same & off].mean(), cosine[~same].mean()


def test_tuning_an_image_body_pulls_classes_together_and_apart():
    module, adapter, X_checked, y = image_setup()
    head = module.head.weight.detach().clone()
    pos_before, neg_before = pair_cosines(module, adapter, X_checked, y)
    log = contrastive_tune(module, adapter, X_checked, y, iterations=10, lr=1e-2, batch_size=16, seed=0)
    pos_after, neg_after = pair_cosines(module, adapter, X_checked, y)
    assert pos_before < 0.93 and neg_before > 0.25  # before: the classes barely apart
    assert pos_after > pos_before + 0.03 and neg_after < neg_before - 0.2
    assert pos_after - neg_after > 0.8
    assert log["pairs"] == 2 * 10 * 16 and log["positive_pairs"] == 160 and log["steps"] == 20
    assert log["last_loss"] < log["first_loss"]
    assert not module.training and not module.backbone.training
    assert torch.equal(module.head.weight, head)  # the head is not used


def test_tuning_is_deterministic_and_leaves_the_global_rng_and_the_flags_alone():
    weights = []
    for _ in range(2):
        module, adapter, X_checked, y = image_setup()
        module.backbone.conv.requires_grad_(False)  # a strategy's freezing: put back afterwards
        state = torch.random.get_rng_state()
        contrastive_tune(module, adapter, X_checked, y, iterations=3, lr=1e-2, epochs=2, seed=5)
        assert torch.equal(torch.random.get_rng_state(), state)
        assert not module.backbone.conv.weight.requires_grad and module.backbone.proj.weight.requires_grad
        weights.append(module.backbone.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not torch.equal(weights[0]["conv.weight"], ColourNet().conv.weight)  # frozen or not, it trained
    module, adapter, X_checked, y = image_setup()
    contrastive_tune(module, adapter, X_checked, y, iterations=3, lr=1e-2, epochs=2, seed=6)
    assert not torch.equal(module.backbone.state_dict()["proj.weight"], weights[0]["proj.weight"])


def test_tuning_refuses_what_it_cannot_train():
    module, adapter, X_checked, y = image_setup()
    with pytest.raises(ValueError, match="regression"):
        contrastive_tune(module, adapter, X_checked, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="labels has 3 rows"):
        contrastive_tune(module, adapter, X_checked, y[:3])
    with pytest.raises(ValueError, match="iterations"):
        contrastive_tune(module, adapter, X_checked, y, iterations=0)
    with pytest.raises(ValueError, match="lr"):
        contrastive_tune(module, adapter, X_checked, y, lr=-1.0)


TEXTS = [
    "a wonderful film, great acting", "great fun and wonderful", "I loved it, great",
    "wonderful story and great cast", "great, simply wonderful", "loved every great minute",
    "a great and lovely film", "wonderful, I loved it",
    "a terrible film, awful acting", "awful and boring", "I hated it, terrible",
    "terrible story and awful cast", "awful, simply terrible", "hated every awful minute",
    "a boring and awful film", "terrible, I hated it",
]
SENTIMENT = np.array([1] * 8 + [0] * 8)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, saved as a local backbone directory."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sktransfer.backbones.huggingface import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertModel(config)
    path = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_the_shared_pretrained_backbone_is_never_tuned(tiny_bert):
    from sktransfer._nn.backbone_cache import build_backbone
    from sktransfer._spec.registry import get_spec

    backbone, _ = build_backbone(get_spec(tiny_bert), True, "cpu")  # the frozen strategies' shared copy
    module = TransferModule(backbone, 32, 2, "mean")
    with pytest.raises(ValueError, match="shared read-only"):
        contrastive_tune(module, None, ["a", "b"], [0, 1])


def test_tuning_a_text_body_pulls_classes_together_and_apart(tiny_bert):
    from sktransfer._spec.registry import get_spec

    spec = get_spec(tiny_bert)
    adapter = make_adapter(spec, max_length=16)
    module = TransferModule(spec.build(pretrained=True), 32, 2, adapter.pooling)
    X_checked = adapter.check(TEXTS)
    pos_before, neg_before = pair_cosines(module, adapter, X_checked, SENTIMENT)
    log = contrastive_tune(module, adapter, X_checked, SENTIMENT, iterations=10, lr=1e-2, seed=0)
    pos_after, neg_after = pair_cosines(module, adapter, X_checked, SENTIMENT)
    assert pos_before - neg_before < 0.05  # a random BERT: every text looks alike
    assert pos_after > pos_before + 0.03 and neg_after < neg_before - 0.5
    assert pos_after - neg_after > 0.8
    assert log["steps"] == 20 and log["last_loss"] < log["first_loss"] and not module.training
