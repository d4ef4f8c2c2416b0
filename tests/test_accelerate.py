"""accelerator=: data-parallel fits through Hugging Face Accelerate (skorch's AccelerateMixin).

Everything runs on the CPU: two processes talk over gloo, started by accelerate's
``debug_launcher`` (forked from this process).
"""

import pickle
import signal

import numpy as np
import pytest
import torch
from _tiny_backbones import Tiny  # tests/ is on sys.path (pytest rootdir import)
from accelerate import Accelerator, DataLoaderConfiguration, debug_launcher
from sklearn.base import clone

from sktransfer import Branch, TransferClassifier, TransferRegressor, load

# lr=0.15 makes the validation loss rise again: early stopping ends the fit at epoch 4 and
# restores epoch 2's weights (load_best), so that path is compared too.
# head_epochs=0: a plain fit would otherwise start from a converged probe, which Accelerate has no solver for.
FIT = dict(max_epochs=8, batch_size=16, lr=0.15, validation_fraction=0.25, patience=2, head_epochs=0, random_state=0)
# Float32 sums in another order (gradients averaged over two half-batches, losses merged
# from two halves) drift apart by rounding only.
RTOL, ATOL = 1e-4, 1e-6


def _data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    return X, X @ np.arange(5.0) + rng.normal(size=64)


def _fit(accelerator):
    """The reference fit. 64 rows: 48 train (3 batches of 16), 16 validate (1 batch); with
    ``split_batches=True`` two processes take 8 rows of every batch each, so there is no
    padding and each step's averaged gradient is the whole batch's, as in one process.
    Tiny has no BatchNorm (whose statistics would be per process).

    The shuffling generator is given: a plain DataLoader draws a fresh seed from the global
    RNG every epoch, while Accelerate's sharded one seeds a generator of its own once (from
    that RNG) and goes on drawing from it, so from the second epoch on the two would
    shuffle differently. With one generator given, both draw every epoch's order from it
    (Accelerate copies the main process's generator state to the others each epoch).
    """
    torch.manual_seed(0)  # Tiny's weights come from the global RNG: the same backbone everywhere
    X, y = _data()
    shuffle = {"iterator_train__generator": torch.Generator().manual_seed(0)}
    return TransferRegressor(Tiny(), accelerator=accelerator, net_params=shuffle, **FIT).fit(X, y), X


def _summary(est, X) -> dict:
    history = est.net_.history
    return {
        "epochs": history[:, "epoch"],
        "train_loss": history[:, "train_loss"],
        "valid_loss": history[:, "valid_loss"],
        "batch_sizes": [[b.get("train_batch_size", b.get("valid_batch_size")) for b in row] for row in
                        history[:, "batches"]],
        "predictions": est.predict(X),
        "device": est.device_,
        "module": type(est.net_.module_).__name__,
    }


def _fit_in_process(out_dir):
    """One of the launched processes (module level: the launcher's processes call it)."""
    signal.alarm(120)  # a collective call made by one process only would hang the test forever
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)  # forked: drop pytest's single-process state
    # accelerate 1.15 ignores Accelerator(split_batches=True): the setting lives here.
    accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(split_batches=True))
    est, X = _fit(accelerator)
    result = {"rank": accelerator.process_index, "n": accelerator.num_processes, **_summary(est, X)}
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        # predict after the fit is local: the main process may call it alone.
        result["main_only"] = est.predict(X)
    with open(f"{out_dir}/rank{accelerator.process_index}.pkl", "wb") as f:
        pickle.dump(result, f)


def test_two_processes_train_as_one(tmp_path):
    debug_launcher(_fit_in_process, args=(str(tmp_path),), num_processes=2)
    ranks = []
    for rank in (0, 1):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as f:
            ranks.append(pickle.load(f))
    ref = _summary(*_fit(None))
    assert ref["epochs"] == [1, 2, 3, 4]  # stopped early, the best epoch (2) restored

    for result in ranks:
        assert result["n"] == 2
        assert result["module"] == "TransferModule"  # unwrapped from DistributedDataParallel
        assert result["device"] == "cpu"
        # The merged history: the same epochs, whole-batch sizes and losses as one process.
        assert result["epochs"] == ref["epochs"]
        assert result["batch_sizes"] == ref["batch_sizes"]
        np.testing.assert_allclose(result["train_loss"], ref["train_loss"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(result["valid_loss"], ref["valid_loss"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(result["predictions"], ref["predictions"], rtol=RTOL, atol=ATOL)
    # Every process holds the same history and the same model.
    assert ranks[0]["train_loss"] == ranks[1]["train_loss"]
    assert ranks[0]["valid_loss"] == ranks[1]["valid_loss"]
    np.testing.assert_array_equal(ranks[0]["predictions"], ranks[1]["predictions"])
    np.testing.assert_array_equal(ranks[0]["main_only"], ranks[0]["predictions"])


def test_one_process_matches_a_plain_fit():
    est, X = _fit(Accelerator(cpu=True))
    ref, _ = _fit(None)
    assert type(est.net_).__name__ == "AcceleratedTransferNet"
    assert est.device_ == "cpu" and est.net_.device == "cpu"
    assert est.net_.history[:, "train_loss"] == ref.net_.history[:, "train_loss"]
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"accelerator": "cuda"}, r"accelerate\.Accelerator instance, e\.g\. accelerator=Accelerator\(\)"),
        ({"accelerator": object()}, r"got object"),
        ({"device": "cpu"}, r"Leave device='auto'"),
        ({"precision": "bf16"}, r"Accelerator\(mixed_precision='bf16'\)"),
        ({"strategy": "gradual"}, r"Use strategy='partial' or 'full'"),
    ],
)
def test_bad_input_names_the_fix(params, match):
    X, y = _data()
    est = TransferRegressor(Tiny(), max_epochs=1, **{"accelerator": Accelerator(cpu=True), **params})
    with pytest.raises((TypeError, ValueError), match=match):
        est.fit(X, y)
    assert not hasattr(est, "net_")


@pytest.fixture(scope="module")
def frozen_accelerated(sentences):
    """A frozen-feature fit (strategy="head": it trains on cached features)."""
    X, y = sentences
    est = TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=3, random_state=0,
                             accelerator=Accelerator(cpu=True))
    return est.fit(X, y), X, y


def test_frozen_fit_saves_loads_and_pickles(frozen_accelerated, tmp_path):
    est, X, labels = frozen_accelerated
    assert est.feature_fingerprint_ is not None  # trained on cached features
    proba = est.predict_proba(X)
    assert est.score(X, labels) > 0.5

    loaded = load(est.save_pretrained(tmp_path / "model"))
    assert loaded.accelerator is None  # the Accelerator is no setting of the model: not stored
    assert "accelerator" not in (tmp_path / "model" / "config.json").read_text()
    np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=1e-5, atol=1e-6)

    unpickled = pickle.loads(pickle.dumps(est))
    assert unpickled.accelerator is None
    assert type(unpickled.net_).__name__ == "TransferNet"  # a plain net: loading needs no accelerate
    np.testing.assert_array_equal(unpickled.predict_proba(X), proba)


def test_full_fit_pickles_and_clones_share_the_accelerator():
    accelerator = Accelerator(cpu=True)
    est, X = _fit(accelerator)
    unpickled = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(unpickled.predict(X), est.predict(X))
    # The unpickled net refits as a plain one; refitting with the Accelerator needs it again.
    assert clone(unpickled).accelerator is None
    assert clone(est).accelerator is accelerator  # scikit-learn's clone would have deep-copied it
    assert est.accelerator is accelerator  # pickling left the fitted estimator alone


def test_fused_fit_matches_a_plain_one(frame):
    X, y = frame
    backbone = {"photo": Branch("resnet18", pretrained=False), "caption": "all-MiniLM-L6-v2",
                "price": "passthrough"}
    # Under Accelerate a frozen head trains with the optimizer (no L-BFGS closure): the plain fit does the same.
    params = dict(strategy="head", head_solver="optimizer", max_epochs=2, lr=1e-2, random_state=0, image_size=16)
    plain = TransferClassifier(backbone, **params).fit(X, y)
    est = TransferClassifier(backbone, accelerator=Accelerator(cpu=True), **params).fit(X, y)
    assert type(est.net_).__name__ == "AcceleratedTransferNet"
    assert est.net_.history[:, "train_loss"] == plain.net_.history[:, "train_loss"]
    np.testing.assert_array_equal(est.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict_proba(X), plain.predict_proba(X))


def test_ctrl_c_and_divergence_still_stop_an_accelerated_fit():
    from test_fit_failures import InterruptAt  # Ctrl-C: the process sends itself SIGINT

    from sktransfer.exceptions import TrainingDivergedError

    accelerator = Accelerator(cpu=True)
    est, X = _fit(accelerator)
    _, y = _data()
    before = est.predict(X)
    est.set_params(net_params={"callbacks": [InterruptAt(epoch=2)]})
    with pytest.raises(KeyboardInterrupt, match=r"interrupted after 1 of 8 epoch\(s\).*left as it was"):
        est.fit(X, y)
    est.set_params(net_params=None, lr=1e30, optimizer="sgd", warmup_fraction=0.0, patience=None)
    with pytest.raises(TrainingDivergedError, match=r"loss became (nan|inf) in epoch 1"):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)  # the previous model, untouched


def test_head_epochs_and_a_search_use_the_accelerator():
    from sklearn.model_selection import GridSearchCV

    accelerator = Accelerator(cpu=True)
    X, y = _data()
    est = TransferRegressor(Tiny(), max_epochs=2, head_epochs=1, random_state=0, accelerator=accelerator)
    search = GridSearchCV(est, {"lr": [1e-3, 1e-2]}, cv=2).fit(X, y)
    assert search.best_estimator_.accelerator is accelerator
    assert type(search.best_estimator_.net_).__name__ == "AcceleratedTransferNet"
    assert np.isfinite(search.predict(X)).all()


def test_the_accelerator_forgets_the_fits_it_served():
    """A search fits many candidates with one Accelerator, which keeps what it prepares:
    each fit takes its model, optimizer and data loaders back, the user's stay."""
    accelerator = Accelerator(cpu=True)
    mine = accelerator.prepare(torch.nn.Linear(2, 2))
    _fit(accelerator)
    _fit(accelerator)
    assert accelerator._models == [mine]
    assert accelerator._optimizers == [] and accelerator._dataloaders == []
