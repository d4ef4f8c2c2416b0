"""Shared helpers for the benchmarks: machine information and result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine_info() -> dict:
    import sklearn
    import skorch
    import torch

    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1024**2, 1)
    except OSError:
        pass
    info["git_commit"] = git_commit()
    return info


def git_commit() -> str | None:
    """The checkout's short commit hash, or None outside git."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except Exception:
        return None


def save_result(name: str, result: dict) -> str:
    """Write ``results/<name>-<device>.json`` with the machine's information."""
    import torch

    os.makedirs(RESULTS, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    payload = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        **result,
    }
    path = os.path.join(RESULTS, f"{name}-{device}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=str)
    print(f"wrote {path}")
    return path


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def digits_images(n: int | None = None, seed: int = 0):
    """scikit-learn's bundled digits as 0..1 float images (N, 8, 8), shuffled."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.RandomState(seed).permutation(len(digits.target))[:n]
    return digits.images[order] / 16.0, digits.target[order]


def parse_param(text: str):
    """``"name=value"`` as ``(name, value)``, the value read as a Python literal where it is one."""
    import ast

    name, _, value = text.partition("=")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value
