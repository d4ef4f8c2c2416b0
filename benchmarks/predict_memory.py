"""Peak resident memory of ``predict_proba`` over 224 px images read from files.

    python benchmarks/predict_memory.py [--sizes 2500 5000 10000] [--backbone mobilenet_v3_small]
                                        [--dir /tmp/sktransfer-bench-images]

Writes 224x224 PNG files (bundled digits, upscaled, as RGB) once, fits a model on a
few of them, then predicts over the first N files in a fresh process for each N and
reads that process's peak RSS.  Images are decoded batch by batch, so the peak should
stay flat as N grows.  Target: under 1.5 GB at N = 10,000.
Saves results/predict_memory-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _common import digits_images, save_result


def write_images(directory: str, n: int) -> list[str]:
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    X, y = digits_images()
    paths = []
    for i in range(n):
        path = os.path.join(directory, f"{i:05d}_{y[i % len(y)]}.png")
        if not os.path.exists(path):
            img = Image.fromarray((X[i % len(X)] * 255).astype("uint8")).resize((224, 224), Image.BILINEAR)
            img.convert("RGB").save(path)
        paths.append(path)
    return paths


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM).

    Not ``getrusage().ru_maxrss``: on Linux a child process inherits its parent's
    maxrss across fork and exec, which would report the parent's peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def worker(model_path: str, directory: str, n: int) -> None:
    import time

    import joblib

    model = joblib.load(model_path)
    before = peak_rss_mb()
    paths = sorted(p for p in os.listdir(directory) if p.endswith(".png"))[:n]
    start = time.perf_counter()
    proba = model.predict_proba([os.path.join(directory, p) for p in paths])
    seconds = time.perf_counter() - start
    assert proba.shape[0] == n
    print(json.dumps({"n": n, "peak_rss_mb": peak_rss_mb(), "rss_before_predict_mb": before, "seconds": seconds}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10000])
    parser.add_argument("--backbone", default="mobilenet_v3_small")
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "sktransfer-bench-images"))
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "DIR", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker[0], args.worker[1], int(args.worker[2]))

    import joblib

    from sktransfer import TransferClassifier

    paths = write_images(args.dir, max(args.sizes))
    labels = [int(os.path.basename(p).split("_")[1][0]) for p in paths[:64]]
    clf = TransferClassifier(args.backbone, pretrained=False, max_epochs=1, random_state=0).fit(paths[:64], labels)
    model_path = os.path.join(args.dir, "..", "sktransfer-bench-model.joblib")
    joblib.dump(clf, model_path)
    runs = []
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", model_path, args.dir, str(n)],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        run = json.loads(out)
        runs.append(run)
        print(f"N={n:>6}: peak RSS {run['peak_rss_mb']:.0f} MB "
              f"(after loading the model: {run['rss_before_predict_mb']:.0f} MB), {run['seconds']:.1f}s")
    peak = max(r["peak_rss_mb"] for r in runs)
    growth = runs[-1]["peak_rss_mb"] - runs[0]["peak_rss_mb"]
    print(f"peak RSS at N={runs[-1]['n']}: {runs[-1]['peak_rss_mb']:.0f} MB (target < 1536 MB); "
          f"growth from N={runs[0]['n']}: {growth:+.0f} MB")
    save_result("predict_memory", {
        "backbone": args.backbone, "image_size": 224, "runs": runs,
        "peak_rss_mb": peak, "growth_mb": growth, "target_peak_mb": 1536,
    })


if __name__ == "__main__":
    main()
