"""Seeded fits depend only on their data and parameters, not on what the process did before.

A fit in a fresh process is compared with the same fit made after other fits of the
same backbone (which built and kept the pretrained backbone, checked its feature
size and filled the feature cache), and a search with ``n_jobs=1`` with one whose
fits run in two worker processes.

Exact equality is asserted wherever the computations are the same.  One thing is
allowed to differ in the last bits: frozen features that come from the cache were
computed in other batches than a fresh fit's (other batch sizes, other padding of
texts), and CPU kernels may add up in another order for another batch shape
(measured: up to 1e-6 on MiniLM or EfficientNet features, up to 3e-7 on predicted
probabilities after 20 epochs). Those differences are float32 rounding, as between
two thread counts; making them bitwise equal would need every sample's features
computed in a fixed batch shape, which no backend promises either.  The number of
torch threads is the other thing kept equal on both sides (see the search test).
"""

import functools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, StratifiedKFold

import sktransfer
from sktransfer import BackboneSpec, ImagePreprocessing, TransferClassifier
from sktransfer._features.stores import memory_store
from sktransfer._spec.registry import Weights
from sktransfer.plugins import get_plugin_manager

TESTS = os.path.dirname(os.path.abspath(__file__))
TINY = "repro_tinycnn"


class TinyCNN(nn.Module):
    """Conv, BatchNorm and dropout: every part whose state or randomness could leak."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.2)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.drop(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


def build_tiny(seed: int = 1, pretrained: bool = True) -> TinyCNN:
    # Like torchvision's and timm's builders: layers are initialised from the global RNG,
    # then the "pretrained" weights (here from a private generator) are loaded over them.
    module = TinyCNN()
    if pretrained:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, tensor in module.state_dict().items():
                if tensor.is_floating_point():
                    values = torch.randn(tensor.shape, generator=generator) * 0.5
                    tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return module


class TinyPlugin:
    @sktransfer.hookimpl
    def register_backbones(self):
        return [
            BackboneSpec(
                name=TINY,
                modality="image",
                build=functools.partial(build_tiny, 1),
                feature_dim=8,
                preprocessing=ImagePreprocessing(input_size=12, resize_size=12, mean=(0.5,) * 3, std=(0.5,) * 3),
                blocks=("conv", "bn"),
                weights=Weights(source="generated in the test"),
            )
        ]


def register_tiny():
    pm = get_plugin_manager()
    plugin = TinyPlugin()
    pm.register(plugin, name="repro-tiny")
    return lambda: pm.unregister(plugin)


@pytest.fixture
def tiny_backbone():
    unregister = register_tiny()
    yield TINY
    unregister()


@pytest.fixture(autouse=True)
def empty_feature_cache():
    memory_store().clear()
    yield
    memory_store().clear()


def images(n: int, seed: int):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 255, size=(n, 12, 12, 3)).astype(np.uint8)
    y = (X[:, :6].mean(axis=(1, 2, 3)) > X[:, 6:].mean(axis=(1, 2, 3))).astype(int)
    return X, y


TINY_PARAMS = dict(random_state=0, max_epochs=3, batch_size=8, lr=1e-2)


def tiny_fit_predict(strategy: str) -> np.ndarray:
    X, y = images(24, seed=0)
    return TransferClassifier(TINY, strategy=strategy, **TINY_PARAMS).fit(X, y).predict_proba(X)


TEXTS = [
    "The soup was warm and full of flavour", "Our guide was patient and funny", "A lovely quiet hotel by the sea",
    "The train arrived early and was clean", "Friendly neighbours helped us move in", "The concert was a joy from start to end",
    "My new bike rides smoothly", "The garden looks beautiful this spring", "A generous and thoughtful gift",
    "The lecture was clear and inspiring",
    "The soup was cold and tasteless", "Our guide was rude and bored", "A noisy dirty hotel by the motorway",
    "The train was late and filthy", "Hostile neighbours complained all night", "The concert was a painful mess",
    "My new bike broke on the first day", "The garden is full of rubbish", "A cheap and careless gift",
    "The lecture was confusing and dull",
]
TEXT_LABELS = np.array([1] * 10 + [0] * 10)
TEXT_QUERIES = ["what a lovely film", "a cruel and miserable experience", "it was fine"]


def minilm_fit_predict() -> np.ndarray:
    """The issue's own case: head strategy, seed 0, two epochs, 20 texts."""
    clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", random_state=0, max_epochs=2)
    return clf.fit(TEXTS, TEXT_LABELS).predict_proba(TEXT_QUERIES)


def in_fresh_process(call: str, tmp_path):
    """Start evaluating ``call`` (an expression using this module) in a new Python process;
    the returned function waits for its result. The process runs while this one warms up."""
    out = tmp_path / "out.npy"
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import torch
        torch.set_num_threads({torch.get_num_threads()})  # the same kernels as this process
        sys.path.insert(0, {TESTS!r})
        import test_reproducibility as t
        t.register_tiny()
        np.save({str(out)!r}, {call})
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS] + [p for p in sys.path if p]))
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )

    def result() -> np.ndarray:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr[-3000:]
        return np.load(out)

    return result


def warm_up(backbone, X, y, **params):
    """Fits that leave everything a process keeps: the built backbone, its checked feature
    size, cached features, and a global RNG that moved on."""
    for other in ("head", "full"):
        TransferClassifier(backbone, strategy=other, random_state=7, max_epochs=1, lr=0.1, batch_size=3, **params).fit(X, y)
    torch.rand(5)
    np.random.rand(5)


@pytest.mark.parametrize("strategy", ["head", "full"])
def test_fresh_process_and_warm_process_fit_identically(tiny_backbone, strategy, tmp_path):
    fresh = in_fresh_process(f"t.tiny_fit_predict({strategy!r})", tmp_path)
    warm_up(TINY, *images(10, seed=1))  # other images: no cached rows shared
    warm = tiny_fit_predict(strategy)
    np.testing.assert_array_equal(warm, fresh())


def test_minilm_head_fit_is_the_same_in_a_fresh_process(tmp_path):
    fresh = in_fresh_process("t.minilm_fit_predict()", tmp_path)
    warm_up("all-MiniLM-L6-v2", ["a first text", "a second one", "and a third"], [0, 1, 0])
    warm = minilm_fit_predict()
    np.testing.assert_array_equal(warm, fresh())


def test_features_cached_by_other_fits_agree_to_float32_rounding(tiny_backbone):
    X, y = images(24, seed=0)
    fresh = TransferClassifier(TINY, strategy="head", feature_cache=None, **TINY_PARAMS).fit(X, y).predict_proba(X)
    # Earlier fits computed most rows in other batches (single rows, batches of 5).
    TransferClassifier(TINY, strategy="head", batch_size=1, max_epochs=1).fit(X[:6], y[:6])
    TransferClassifier(TINY, strategy="head", batch_size=5, max_epochs=1).fit(X[6:20], y[6:20])
    cached = TransferClassifier(TINY, strategy="head", **TINY_PARAMS).fit(X, y).predict_proba(X)
    # float32 features differ by at most a few ulps; probabilities by far less than 1e-6.
    np.testing.assert_allclose(cached, fresh, rtol=0, atol=1e-6)


class ModuleCNN(nn.Module):
    """A user module (it pickles to search workers, unlike a test-registered name)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("strategy", ["head", "full"])
def test_search_scores_do_not_depend_on_n_jobs(strategy, one_thread):
    # The thread count is fixed on both sides: joblib gives each of n_jobs workers
    # cpu_count // n_jobs threads, and CPU backward passes (oneDNN convolutions) add up
    # weight gradients in another order for another thread count: 5e-7 after one step
    # here, up to 4e-3 in probabilities after three epochs at lr=0.1. That is the
    # machine's arithmetic, not the process's history; everything else must match.
    X, y = images(36, seed=2)
    results = {}
    for n_jobs in (1, 2):
        memory_store().clear()
        search = GridSearchCV(
            TransferClassifier(ModuleCNN(), strategy=strategy, image_size=12, random_state=0, max_epochs=3, batch_size=8),
            {"lr": [1e-2, 1e-1]},
            cv=StratifiedKFold(3, shuffle=True, random_state=0),
            scoring="neg_log_loss",
            n_jobs=n_jobs,
            refit=False,
        )
        with parallel_config("loky", inner_max_num_threads=1):
            search.fit(X, y)
        results[n_jobs] = search.cv_results_
    for key in ["mean_test_score"] + [f"split{k}_test_score" for k in range(3)]:
        np.testing.assert_array_equal(results[2][key], results[1][key], err_msg=key)
