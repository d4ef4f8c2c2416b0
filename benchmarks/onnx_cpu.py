"""CPU prediction: the torch estimator against its ONNX export (fp32 and int8) on real weights.

    python benchmarks/onnx_cpu.py [--n-images 600] [--n-texts 512] [--image-size 224]

EfficientNet-Lite0 (timm plugin) is fitted with ``strategy="head"`` on bundled digits
and all-MiniLM-L6-v2 on short sentiment sentences; both are exported with
``sktransfer.export_onnx`` (fp32, then ``quantize="int8"``). Reported per model: export
time, file sizes, prediction time of each (fastest of 3 runs, same batch size, the
feature cache off so torch really runs the backbone), the largest probability difference
from torch, label agreement, and accuracy on held-out rows where there are labels.
Saves results/onnx_cpu-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from _common import digits_images, save_result

POSITIVE = ["I love this movie", "What a great day", "Fantastic work, well done", "This is wonderful",
            "I am so happy with it", "Brilliant and delightful", "Superb quality, highly recommended",
            "Really enjoyed every minute", "An excellent, heartwarming story", "The best meal I have had"]
NEGATIVE = ["I hate this", "What a terrible day", "Awful work, badly done", "This is horrible",
            "I am so sad about it", "Dreadful and boring", "Poor quality, do not buy",
            "Really disliked every minute", "A dull, depressing story", "The worst meal I have had"]


def best_of(fn, runs=3):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def compare(name, estimator, X_test, y_test, directory) -> dict:
    from sktransfer import export_onnx, load_onnx

    start = time.perf_counter()
    export_onnx(estimator, os.path.join(directory, "fp32"))
    export_s = time.perf_counter() - start
    export_onnx(estimator, os.path.join(directory, "int8"), quantize="int8")
    torch_s, p_torch = best_of(lambda: estimator.predict_proba(X_test))
    row = {"model": name, "n_predicted": len(X_test), "export_s": round(export_s, 1), "torch_predict_s": round(torch_s, 3)}
    for kind in ("fp32", "int8"):
        onnx = load_onnx(os.path.join(directory, kind))
        seconds, p = best_of(lambda onnx=onnx: onnx.predict_proba(X_test))
        row.update({
            f"{kind}_mib": round(os.path.getsize(os.path.join(directory, kind, "model.onnx")) / 2**20, 2),
            f"{kind}_predict_s": round(seconds, 3),
            f"{kind}_speedup_vs_torch": round(torch_s / seconds, 2),
            f"{kind}_max_proba_diff": float(np.abs(p - p_torch).max()),
            f"{kind}_label_agreement": float((p.argmax(1) == p_torch.argmax(1)).mean()),
        })
        if y_test is not None:
            row[f"{kind}_accuracy"] = float((onnx.classes_[p.argmax(1)] == y_test).mean())
    if y_test is not None:
        row["torch_accuracy"] = float((estimator.classes_[p_torch.argmax(1)] == y_test).mean())
    print(row)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-images", type=int, default=600)
    parser.add_argument("--n-texts", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()

    from sktransfer import TransferClassifier

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        X, y = digits_images(args.n_images)
        half = len(X) // 2
        clf = TransferClassifier("efficientnet_lite0", strategy="head", image_size=args.image_size, max_epochs=20,
                                 feature_cache=None, random_state=0).fit(X[:half], y[:half])
        rows.append(compare("efficientnet_lite0", clf, X[half:], y[half:], os.path.join(tmp, "image")))

        texts = POSITIVE + NEGATIVE
        labels = np.array(["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE))
        clf = TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=20, feature_cache=None,
                                 random_state=0).fit(texts, labels)
        rng = np.random.RandomState(0)
        # Sentences joined two to six at a time: lengths vary as in real batches.
        test = [" ".join(rng.choice(texts, rng.randint(2, 7))) for _ in range(args.n_texts)]
        rows.append(compare("all-MiniLM-L6-v2", clf, test, None, os.path.join(tmp, "text")))
    save_result("onnx_cpu", {"rows": rows, "args": vars(args)})


if __name__ == "__main__":
    main()
