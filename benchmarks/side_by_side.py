"""Run one benchmark alternately on two source trees of sktransfer and compare their figures.

    python benchmarks/side_by_side.py --before DIR --after DIR --bench NAME [--rounds 3] [--threads 1]
                                      [--scripts each|before|after] [-- ARGS FOR THE BENCHMARK]

``--bench`` is ``frozen_search``, ``finetune_epoch`` or ``predict_throughput``. The benchmark runs
``--rounds`` times on each tree, alternately (before, after, before, after, ...), each run in a fresh
subprocess with ``PYTHONPATH`` set to that tree (and its ``plugins/*/src``), its working directory in
that tree, and the same torch thread count (``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and
``torch.set_num_threads``, default 1). Each run checks that ``sktransfer`` and the plugins were
imported from its tree, not from the editable install.

The figures are read from the JSON the benchmark writes through ``_common.save_result``. The runner
points ``_common.RESULTS`` at a temporary folder, so the trees' committed ``results/*.json`` are not
overwritten and the benchmark scripts need no change (a tree from before this runner works as is).
By default each tree runs its own copy of the benchmark script (``--scripts each``), which a
restructuring that moves private modules needs; ``--scripts before`` or ``after`` runs one tree's
script on both. The runner warns when the two scripts differ.

It prints, per figure: before mean +- sd, after mean +- sd, the ratio of the means after/before, and
the noise: the spread of the before runs among themselves, max(before) / min(before) - 1, i.e. the
largest ratio between two runs of the same code in this run (the same spread over the after runs is
shown in brackets: when it is much larger than the noise, the noise is underestimated). A figure is
marked WORSE when the ratio is worse than 1 by more than that noise, in the figure's bad direction
(slower, lower throughput, a higher cost ratio, a lower score). The table goes to ``benchmarks/results/side_by_side_<bench>.json``
(next to this script), with every run's figures and wall time.

Settings chosen for the shared 2-core CPU machine: a single run took 16 to 30 s there alone and up
to 65 s under a load average of 4 to 7 from other jobs; the three comparisons below, 3 rounds each,
took 113 + 238 + 281 s = 10.5 minutes under that load. From the repository root:

    .venv/bin/python benchmarks/side_by_side.py --before ../base --after . --bench frozen_search -- \\
        --n 160 --image-size 128 --skip-unshared
    .venv/bin/python benchmarks/side_by_side.py --before ../base --after . --bench finetune_epoch -- \\
        --n 64 --image-size 96 --epochs 4
    .venv/bin/python benchmarks/side_by_side.py --before ../base --after . --bench predict_throughput -- \\
        --n 192 --image-size 128

- frozen_search: 160 digits at 128 px, 12 head configurations x 5 folds with the shared feature cache,
  against one embedding pass (``--skip-unshared``: the search without sharing costs ~60 passes).
- finetune_epoch: 64 digits at 96 px, batch 32 (2 steps an epoch), 4 epochs; the median of epochs
  2-4 of two sktransfer fits against epochs 2-4 of the hand-written loop.
- predict_throughput: 192 digits at 128 px, batch 32, best of 3 interleaved runs each side.

These are smaller than the benchmarks' defaults (the README's figures), so their absolute times and
ratios differ from the README's; they only compare two trees under the same settings.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))

# Headline figures of each benchmark (keys of its result JSON) and which way is better.
FIGURES = {
    "frozen_search": {
        "one_pass_s": "lower", "search_shared_s": "lower", "ratio": "lower",
        "search_unshared_s": "lower", "speedup": "higher", "best_score": "higher",
    },
    "finetune_epoch": {"sktransfer_epoch_s": "lower", "hand_written_epoch_s": "lower", "ratio": "lower"},
    "predict_throughput": {"sktransfer_images_per_s": "higher", "raw_images_per_s": "higher", "ratio": "higher"},
}

# Runs in the child process: argv = script, tree, results folder, threads, benchmark args...
LAUNCHER = r"""
import os, runpy, sys
script, tree, out, threads = sys.argv[1:5]
import torch
torch.set_num_threads(int(threads))
import importlib
tree = os.path.realpath(tree) + os.sep
names = ["sktransfer"] + sorted(
    os.path.basename(p) for p in __import__("glob").glob(os.path.join(tree, "plugins", "*", "src", "*"))
    if os.path.isfile(os.path.join(p, "__init__.py")))
for name in names:
    where = os.path.realpath(importlib.import_module(name).__file__)
    if not where.startswith(tree):
        sys.exit(f"side_by_side: {name} was imported from {where}, not from {tree}")
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
import _common
_common.RESULTS = out  # save_result writes here, not into the tree's results/
sys.argv = [script] + sys.argv[5:]
runpy.run_path(script, run_name="__main__")
"""


def git_commit(tree: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", tree, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except Exception:
        return None


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def run_once(tree: str, script: str, bench: str, threads: int, bench_args: list[str], python: str) -> tuple[dict, float]:
    env = dict(os.environ)
    paths = [tree] + sorted(glob.glob(os.path.join(tree, "plugins", "*", "src")))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory(prefix="side_by_side_") as out:
        cmd = [python, "-c", LAUNCHER, script, tree, out, str(threads), *bench_args]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            sys.exit(f"side_by_side: {bench} failed in {tree} (exit {proc.returncode})")
        found = glob.glob(os.path.join(out, f"{bench}-*.json"))
        if len(found) != 1:
            sys.exit(f"side_by_side: expected one {bench}-<device>.json from the run in {tree}, found {found}")
        with open(found[0]) as f:
            return json.load(f), wall


def summarise(before: list[float], after: list[float], better: str) -> dict:
    def sd(v):
        return statistics.stdev(v) if len(v) > 1 else 0.0

    mb, ma = statistics.mean(before), statistics.mean(after)
    ratio = ma / mb if mb else float("nan")
    noise = max(before) / min(before) - 1 if min(before) > 0 else float("nan")
    after_spread = max(after) / min(after) - 1 if min(after) > 0 else float("nan")
    worse = ratio > 1 + noise if better == "lower" else ratio < 1 / (1 + noise)
    return {
        "better": better, "before": before, "after": after,
        "before_mean": mb, "before_sd": sd(before), "after_mean": ma, "after_sd": sd(after),
        "ratio_after_before": ratio, "noise": noise, "after_spread": after_spread,
        "worse_beyond_noise": bool(worse),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--before", required=True, help="source tree of sktransfer before the change")
    parser.add_argument("--after", required=True, help="source tree of sktransfer after the change")
    parser.add_argument("--bench", required=True, choices=sorted(FIGURES))
    parser.add_argument("--rounds", type=int, default=3, help="runs on each tree, alternating (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every run (default 1)")
    parser.add_argument("--scripts", choices=["each", "before", "after"], default="each",
                        help="whose benchmark script to run: each tree its own (default), or one tree's on both")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the runs (default: this one)")
    args, bench_args = parser.parse_known_args()
    if bench_args[:1] == ["--"]:
        bench_args = bench_args[1:]
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 to measure the noise")

    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    scripts = {}
    for side, tree in trees.items():
        source = trees[side] if args.scripts == "each" else trees[args.scripts]
        scripts[side] = os.path.join(source, "benchmarks", f"{args.bench}.py")
        if not os.path.isfile(scripts[side]):
            sys.exit(f"side_by_side: no {scripts[side]}")
    script_sha = {side: sha256(path) for side, path in scripts.items()}
    commits = {side: git_commit(tree) for side, tree in trees.items()}
    print(f"{args.bench} {' '.join(bench_args)}: {args.rounds} rounds, {args.threads} torch thread(s)")
    for side in trees:
        print(f"  {side:6} {trees[side]} ({commits[side]}), script {scripts[side]} [{script_sha[side]}]")
    if script_sha["before"] != script_sha["after"]:
        print("  warning: the two benchmark scripts differ; the comparison includes their differences")

    load_start = os.getloadavg()
    started = time.perf_counter()
    runs = {"before": [], "after": []}
    for r in range(args.rounds):
        for side in ("before", "after"):
            result, wall = run_once(trees[side], scripts[side], args.bench, args.threads, bench_args, args.python)
            figures = {k: result[k] for k in FIGURES[args.bench] if isinstance(result.get(k), (int, float))}
            runs[side].append({"wall_s": wall, "figures": figures,
                               "torch_threads": result.get("machine", {}).get("torch_threads"),
                               "git_commit": result.get("machine", {}).get("git_commit")})
            shown = ", ".join(f"{k}={v:.4g}" for k, v in figures.items())
            print(f"  round {r + 1} {side:6} {wall:5.1f}s  {shown}", flush=True)
    total = time.perf_counter() - started

    table = {}
    for name, better in FIGURES[args.bench].items():
        if all(name in run["figures"] for side in runs for run in runs[side]):
            table[name] = summarise([run["figures"][name] for run in runs["before"]],
                                    [run["figures"][name] for run in runs["after"]], better)

    print()
    print(f"{'figure':24} {'before mean ± sd':>20} {'after mean ± sd':>20} {'after/before':>12} {'noise':>7} "
          f"{'(after)':>8}")
    for name, row in table.items():
        print(f"{name:24} {row['before_mean']:>11.4g} ± {row['before_sd']:<6.2g} {row['after_mean']:>11.4g} ± "
              f"{row['after_sd']:<6.2g} {row['ratio_after_before']:>12.3f} {row['noise']:>6.1%} "
              f"({row['after_spread']:>5.1%})  {'WORSE' if row['worse_beyond_noise'] else 'ok'} "
              f"({row['better']} is better)")
    print(f"noise = max/min - 1 over the {args.rounds} before runs (after: the same over the after runs); "
          f"total {total:.0f}s, load average {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", f"side_by_side_{args.bench}.json")
    with open(path, "w") as f:
        json.dump({
            "benchmark": args.bench, "bench_args": bench_args,
            "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "before": trees["before"], "after": trees["after"], "commits": commits,
            "scripts": scripts, "script_sha256": script_sha,
            "same_tree": trees["before"] == trees["after"],
            "rounds": args.rounds, "threads": args.threads, "total_s": total,
            "load_average_start": load_start, "load_average_end": os.getloadavg(),
            "noise_definition": "max(before) / min(before) - 1 over the before runs",
            "table": table, "runs": runs,
        }, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
