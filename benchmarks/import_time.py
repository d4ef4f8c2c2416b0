"""Wall time of ``import sktransfer`` and ``sktransfer --help`` in fresh processes, for one or
more source trees, runs interleaved (tree A, tree B, tree A...) so that load on a shared
machine falls on every tree alike.

    python benchmarks/import_time.py --trees ../main . --repeats 5

Each run is a new ``python`` process with ``PYTHONPATH`` set to the tree (and its
``plugins/*/src``), started from an empty temporary folder (``python -c`` and ``-m`` put
the working directory first on ``sys.path``). It prints, per tree and command, the median
and the range of the wall times, and whether torch was imported.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "import sktransfer": ["-c", "import sys, sktransfer; print('torch' in sys.modules)"],
    "sktransfer --help": [
        "-c",
        (
            "import runpy, sys\nsys.argv = ['sktransfer', '--help']\ntry:\n"
            "    runpy.run_module('sktransfer', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)"
        ),
    ],
}


def tree_env(tree: str) -> dict:
    """The environment that makes a child import sktransfer and its plugins from ``tree``."""
    root = os.path.abspath(tree)
    paths = [root, *sorted(glob.glob(os.path.join(root, "plugins", "*", "src")))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}


def timed_run(tree: str, args: list[str], cwd: str) -> tuple[float, bool]:
    """Seconds one fresh process took, and whether it imported torch (its last printed line)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *args], env=tree_env(tree), cwd=cwd, capture_output=True, text=True,
                         check=True).stdout
    return time.perf_counter() - start, out.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", nargs="+", default=["."], help="source trees of sktransfer to compare")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = {(tree, name): [] for tree in args.trees for name in COMMANDS}
    torch_loaded = {}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(args.repeats):
            for name, command in COMMANDS.items():
                for tree in args.trees:
                    seconds, torch_loaded[tree, name] = timed_run(tree, command, cwd)
                    times[tree, name].append(seconds)
    for (tree, name), runs in times.items():
        print(f"{tree:>20}  {name:<18} median {statistics.median(runs):6.3f} s  "
              f"(min {min(runs):.3f}, max {max(runs):.3f}, {len(runs)} runs)  torch imported: {torch_loaded[tree, name]}")


if __name__ == "__main__":
    main()
