"""Deploying without torch: torch fp32 ``predict`` against ONNX Runtime fp32 and int8, side by side.

    python benchmarks/onnx_predict.py [--vader-dir ../shared/data/vader] [--flowers-dir ../shared/data/flowers12]
                                      [--n-train 1500] [--n-test 1000] [--epochs 2] [--threads 1]

(a) all-MiniLM-L6-v2 fine-tuned as a ``TransferRegressor`` on VADER tweets (mean rating;
Pearson r on held-out rows); (b) EfficientNet-Lite0 (timm plugin, ``strategy="head"``)
on flowers12 train/ (accuracy on test/, images read from their files by every engine).
Each fitted model is exported with ``sktransfer.export_onnx`` (fp32, then
``quantize="int8"``); an extra int8 row quantizes the same fp32 graph per tensor
instead (``--alt-int8``), to show why the default is what it is.

Per engine, in one process, rounds interleaved (the machine is shared; the best of
``--rounds`` is kept): throughput at batch 32 on the test rows, single-sample latency
(median over ``--n-latency`` calls of one sample), the quality, file size. Then, one
fresh subprocess per engine: load + predict on the test rows, reporting its peak
resident memory (``VmHWM``) and the seconds from start to the first answer (imports
included). Also: ``import sktransfer`` time, and the size on disk of what a torch-free
predictor needs (the installed distributions onnxruntime, numpy, Pillow, tokenizers
and their requirements) against the full install (sktransfer's requirements).
Saves results/onnx_predict-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from _common import save_result

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TORCH_FREE = ("onnxruntime", "numpy", "pillow", "tokenizers")

# One engine in a fresh process: peak memory and the time to the first answer.
CHILD = """
import json, sys, time
start = time.perf_counter()
engine, path, X, threads = json.loads(sys.stdin.read())
import sktransfer
if engine == "torch":
    import torch
    torch.set_num_threads(threads)
    model = sktransfer.load(path, device="cpu").set_params(feature_cache=None)
else:
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    model = sktransfer.load_onnx(path, session_options=options)
model.predict(X[:1])
first = time.perf_counter() - start
model.predict(X)
heavy = sorted(m for m in ("torch", "transformers", "skorch", "sklearn") if m in sys.modules)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report its parent's peak.
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mib": peak / 1024,
                  "seconds_to_first_answer": first, "heavy_modules": heavy}))
"""


def child(engine: str, path: str, X: list, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps([engine, path, list(X), threads]), env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


IMPORT = "import time; s = time.perf_counter(); import sktransfer; print(time.perf_counter() - s)"


def import_seconds(repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True, check=True)
        times.append(float(out.stdout))
    return min(times)


# ---------------------------------------------------------------- environment sizes
def _requirements(name: str) -> list[str]:
    """The distributions ``name`` requires on this machine (markers evaluated, extras left out)."""
    from packaging.requirements import Requirement

    names = []
    for line in metadata.distribution(name).requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def closure(names) -> set[str]:
    """``names`` and everything they require, as installed here (missing ones skipped)."""
    seen, todo = set(), [re.sub(r"[-_.]+", "-", n).lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            requires = _requirements(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [re.sub(r"[-_.]+", "-", n).lower() for n in requires]
    return seen


def installed_mib(names) -> float:
    """Bytes on disk of the files the distributions ``names`` installed."""
    total = 0
    for name in names:
        for file in metadata.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return total / 2**20


def environment_sizes() -> dict:
    torch_free = closure(TORCH_FREE)
    full = closure(_requirements("sktransfer")) if _has("sktransfer") else closure(
        ["torch", "torchvision", "transformers", "skorch", "scikit-learn", "scipy", "safetensors", "pluggy"])
    return {"torch_free": sorted(torch_free), "torch_free_mib": round(installed_mib(torch_free)),
            "full": sorted(full), "full_mib": round(installed_mib(full))}


def _has(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


# ---------------------------------------------------------------- engines
def engines(model, directory: str, threads: int, alt_int8: bool) -> dict:
    """torch, ONNX fp32, ONNX int8 (and the alternative int8) as predictors with ``predict``."""
    import onnxruntime

    from sktransfer import export_onnx, load_onnx

    seconds = {}
    for kind, quantize in (("fp32", None), ("int8", "int8")):
        start = time.perf_counter()
        export_onnx(model, os.path.join(directory, kind), quantize=quantize)
        seconds[kind] = time.perf_counter() - start
    paths = {"torch": os.path.join(directory, "model"), "onnx fp32": os.path.join(directory, "fp32"),
             "onnx int8": os.path.join(directory, "int8")}
    model.save_pretrained(paths["torch"])
    if alt_int8:
        paths["onnx int8 per-tensor"] = per_tensor_copy(paths["onnx fp32"], os.path.join(directory, "int8-tensor"))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    predictors = {"torch": model.set_params(feature_cache=None)}
    predictors.update({name: load_onnx(path, session_options=options) for name, path in paths.items() if name != "torch"})
    return predictors, paths, seconds


def per_tensor_copy(fp32_dir: str, target: str) -> str:
    """The fp32 export quantized with one scale per weight tensor (the rest as ``quantize="int8"``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    shutil.copytree(fp32_dir, target)
    quantize_dynamic(os.path.join(fp32_dir, "model.onnx"), os.path.join(target, "model.onnx"),
                     weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"], per_channel=False)
    return target


def directory_mib(path: str, pattern: str) -> float:
    return round(sum(p.stat().st_size for p in Path(path).glob(pattern)) / 2**20, 1)


def measure(name: str, model, X_test, quality, directory: str, args) -> list[dict]:
    predictors, paths, export_s = engines(model, directory, args.threads, args.alt_int8)
    rows = {engine: {"model": name, "engine": engine} for engine in predictors}
    for engine, predictor in predictors.items():
        predicted = predictor.predict(X_test)  # warm-up, and the quality
        rows[engine].update(quality(predicted))
    latency = {engine: [] for engine in predictors}
    throughput = {engine: float("inf") for engine in predictors}
    for _ in range(args.rounds):  # interleaved: the machine's load moves all engines alike
        for engine, predictor in predictors.items():
            start = time.perf_counter()
            predictor.predict(X_test)
            throughput[engine] = min(throughput[engine], time.perf_counter() - start)
            for x in X_test[: args.n_latency // args.rounds]:
                start = time.perf_counter()
                predictor.predict([x])
                latency[engine].append(time.perf_counter() - start)
    for engine, row in rows.items():
        row["samples_per_s_batch32"] = round(len(X_test) / throughput[engine], 1)
        row["speedup_vs_torch"] = round(throughput["torch"] / throughput[engine], 2)
        row["latency_ms_median"] = round(1000 * statistics.median(latency[engine]), 1)
        pattern = "model.safetensors" if engine == "torch" else "model.onnx"
        row["file_mib"] = directory_mib(paths[engine], pattern)
        row.update({f"child_{k}": v for k, v in child("torch" if engine == "torch" else "onnx", paths[engine],
                                                         list(X_test), args.threads).items()})
        if engine in ("onnx fp32", "onnx int8"):
            row["export_s"] = round(export_s[engine.split()[1]], 1)
        print(row, flush=True)
    return list(rows.values())


def vader_rows(args, directory: str) -> list[dict]:
    from scipy.stats import pearsonr
    from vader import load_named_set

    from sktransfer import TransferRegressor

    texts, y = load_named_set(args.vader_dir, "tweets")
    order = np.random.RandomState(0).permutation(len(texts))
    train, test = order[: args.n_train], order[len(order) - args.n_test:]
    start = time.perf_counter()
    reg = TransferRegressor("all-MiniLM-L6-v2", max_epochs=args.epochs, feature_cache=None, random_state=0)
    reg.fit([texts[i] for i in train], y[train])
    print(f"MiniLM fitted on {len(train)} tweets in {time.perf_counter() - start:.0f} s", flush=True)
    y_test = y[test]
    return measure("all-MiniLM-L6-v2 regressor, VADER tweets", reg, [texts[i] for i in test],
                   lambda p: {"pearson_r": round(float(pearsonr(p, y_test)[0]), 4)}, directory, args)


def flowers_rows(args, directory: str) -> list[dict]:
    from flowers12 import image_folder

    from sktransfer import TransferClassifier

    X_train, y_train = image_folder(Path(args.flowers_dir) / "train")
    X_test, y_test = image_folder(Path(args.flowers_dir) / "test")
    start = time.perf_counter()
    clf = TransferClassifier("efficientnet_lite0", strategy="head", feature_cache=None, random_state=0)
    clf.fit(X_train, y_train)
    print(f"EfficientNet-Lite0 fitted on {len(X_train)} photos in {time.perf_counter() - start:.0f} s", flush=True)
    return measure("efficientnet_lite0 classifier, flowers12", clf, X_test,
                   lambda p: {"accuracy": round(float(np.mean(p == y_test)), 4)}, directory, args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vader-dir", default=str(ROOT.parent / "shared" / "data" / "vader"))
    parser.add_argument("--flowers-dir", default=str(ROOT.parent / "shared" / "data" / "flowers12"))
    parser.add_argument("--n-train", type=int, default=1500, help="tweets the regressor is fine-tuned on")
    parser.add_argument("--n-test", type=int, default=1000, help="held-out tweets predicted and scored")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-latency", type=int, default=60, help="single-sample calls per engine")
    parser.add_argument("--alt-int8", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--models", default="vader,flowers")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    result = {"args": vars(args), "import_sktransfer_s": round(import_seconds(), 3),
              "environment": environment_sizes(), "rows": []}
    print({k: v for k, v in result.items() if k != "environment"}, result["environment"]["torch_free_mib"],
          result["environment"]["full_mib"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "vader" in args.models:
            result["rows"] += vader_rows(args, os.path.join(tmp, "vader"))
        if "flowers" in args.models:
            result["rows"] += flowers_rows(args, os.path.join(tmp, "flowers"))
    print(save_result("onnx_predict", result))


if __name__ == "__main__":
    main()
