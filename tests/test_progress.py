"""Progress bars: one per long step (extracting features, the whole fit, predicting), on
stderr, only in a verbose call and when stderr is a terminal (or SKTRANSFER_PROGRESS=1)."""

import io
import re
import sys

import numpy as np
import pytest
from _tiny_backbones import CountingCNN, brightness_images  # tests/ is on sys.path
from skorch.callbacks import Callback, ProgressBar

from sktransfer import TransferClassifier, TransferEmbedder
from sktransfer._features.progress import ENV


def data(n=60):
    rng = np.random.RandomState(0)
    X = rng.randn(n, 5).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


def bars(stderr: str) -> dict:
    """Each bar's name -> the counts ``(done, total)`` it drew, in order."""
    found = {}
    for name, done, total in re.findall(r"([a-z][a-z -]+): +\d+%\|[^|]*\| (\d+)/(\d+)", stderr):
        found.setdefault(name, []).append((int(done), int(total)))
    return found


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setenv(ENV, "1")


def test_a_frozen_fit_and_predict_show_extraction_then_training(forced, capsys, fresh_feature_cache):
    X, y = brightness_images(60)
    clf = TransferClassifier(CountingCNN(), strategy="head", max_epochs=4, verbose=1, random_state=0).fit(X, y)
    captured = capsys.readouterr()
    drawn = bars(captured.err)
    assert drawn["extracting features"][-1] == (60, 60)
    # a converged head: one full batch per epoch, 4 epochs at most
    assert {total for _, total in drawn["training the head"]} == {4}
    assert "train_loss" in captured.out and "train_loss" not in captured.err  # the epoch table on stdout
    clf.predict(brightness_images(85)[0])  # 60 rows from the cache, 25 new ones
    drawn = bars(capsys.readouterr().err)
    assert drawn["extracting features"][-1] == (25, 25)
    assert "predicting" not in drawn  # only the head runs on the features: no second bar


def test_fine_tuning_shows_one_bar_over_every_epoch(forced, capsys):
    X, y = data(80)
    clf = TransferClassifier("mlp", max_epochs=3, head_epochs=0, batch_size=16, validation_fraction=0.25,
                             verbose=1, random_state=0).fit(X, y)
    drawn = bars(capsys.readouterr().err)
    # 3 epochs x (60 training rows / 16 -> 4 batches + 20 validation rows / 16 -> 2 batches)
    assert drawn["fine-tuning"][-1] == (18, 18)
    assert [done for done, _ in drawn["fine-tuning"]] == sorted(done for done, _ in drawn["fine-tuning"])
    assert {total for _, total in drawn["fine-tuning"]} == {18}  # never a new bar per epoch
    assert not any(isinstance(cb, ProgressBar) for _, cb in clf.net_.callbacks_)
    clf.predict_proba(X)
    assert bars(capsys.readouterr().err)["predicting"][-1] == (80, 80)


def test_no_bars_when_verbose_is_0_or_stderr_is_not_a_terminal(monkeypatch, capsys):
    X, y = data()
    monkeypatch.delenv(ENV, raising=False)
    clf = TransferClassifier("mlp", max_epochs=2, head_epochs=0, verbose=1, random_state=0).fit(X, y)
    clf.score(X, y)
    captured = capsys.readouterr()
    assert bars(captured.err) == {} and "train_loss" in captured.out  # the log, not the bars
    monkeypatch.setenv(ENV, "1")
    TransferClassifier("mlp", strategy="head", max_epochs=2, random_state=0).fit(X, y).predict(X)
    assert capsys.readouterr().err == ""


def test_a_terminal_shows_bars_unless_progress_is_turned_off(monkeypatch):
    X, _ = data()
    monkeypatch.delenv(ENV, raising=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    TransferEmbedder("mlp", verbose=1).fit(X).transform(X)
    assert bars(terminal.getvalue())["extracting features"][-1] == (60, 60)
    off = Terminal()
    monkeypatch.setattr(sys, "stderr", off)
    monkeypatch.setenv(ENV, "0")
    TransferEmbedder("mlp", verbose=1).fit(X).transform(X)
    assert off.getvalue() == ""


class Boom(Callback):
    def on_epoch_end(self, net, **kwargs):
        raise RuntimeError("boom")


def test_a_failed_fit_closes_its_bar(forced, capsys):
    from tqdm import tqdm

    X, y = data()
    clf = TransferClassifier("mlp", max_epochs=3, head_epochs=0, verbose=1, random_state=0,
                             net_params={"callbacks": [Boom()]})
    with pytest.raises(RuntimeError, match="boom") as failure:
        clf.fit(X, y)
    # The traceback (kept here, as a notebook keeps the last one) still holds the net: closed all the same.
    assert failure.traceback and not [bar for bar in list(tqdm._instances) if not bar.disable]
    # The next print goes to stdout as usual (PrintLog got print back).
    assert "fine-tuning" in capsys.readouterr().err


def run(*args, env):
    import os
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    result = subprocess.run([sys.executable, "-m", "sktransfer", *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from PIL import Image

    X, y = brightness_images(16)
    root = tmp_path_factory.mktemp("progress")
    for i, (image, label) in enumerate(zip(X, y)):
        (root / f"class{label}").mkdir(exist_ok=True)
        Image.fromarray(image).resize((32, 32)).save(root / f"class{label}" / f"{i}.png")
    return root


@pytest.mark.slow
def test_the_command_line_shows_bars_unless_quiet(image_folder, tmp_path):
    env = {ENV: "1", "SKTRANSFER_CACHE": str(tmp_path / "cache")}
    model = tmp_path / "model"
    fit = run("fit", image_folder, "--backbone", "efficientnet_lite0", "--strategy", "head", "--image-size", "32",
              "--epochs", "2", "--out", model, env=env)
    drawn = bars(fit.stderr)
    assert drawn["extracting features"][-1] == (16, 16) and drawn["training the head"][-1][1] == 2
    assert "train_loss" in fit.stdout  # the epoch table
    quiet = run("predict", model, image_folder, "--out", tmp_path / "p.csv", "--feature-cache", "none", "--quiet", env=env)
    assert quiet.stderr == ""
    loud = run("evaluate", model, image_folder, "--feature-cache", "none", env=env)
    assert bars(loud.stderr)["extracting features"][-1] == (16, 16)


@pytest.mark.slow
def test_the_demo_says_what_it_does_as_it_goes(image_folder):
    demo = run("demo", "--data", image_folder, "--train-size", "8", "--test-size", "8", "--image-size", "32",
               "--epochs", "1", env={ENV: "1"})
    lines = demo.stdout.splitlines()
    steps = [line for line in lines if line.startswith("[")]
    assert [s.split("]")[0] for s in steps] == ["[1/3", "[2/3", "[3/3"]
    assert sum("fitting on 8 samples..." in line for line in lines) == 3
    assert sum("scoring on 8 test samples..." in line for line in lines) == 3
    assert "fine-tuning" in bars(demo.stderr) and "extracting features" in bars(demo.stderr)
    assert run("demo", "--data", image_folder, "--train-size", "8", "--test-size", "8", "--image-size", "32",
               "--epochs", "1", "--quiet", env={ENV: "1"}).stderr == ""


def test_contrastive_tuning_shows_its_steps(forced, capsys):
    X, y = brightness_images(12)
    TransferClassifier("example_tinycnn", strategy="contrastive", contrastive_iterations=2, image_size=16,
                       verbose=1, random_state=0).fit(X, y)
    drawn = bars(capsys.readouterr().err)
    # 2 * 2 iterations * 12 samples = 48 pairs, 16 a step: 3 steps in one epoch
    assert drawn["tuning the body on pairs"][-1] == (3, 3)
