"""Command line: ``sktransfer backbones`` and ``sktransfer demo`` (also ``python -m sktransfer``)."""

from __future__ import annotations

import argparse
import sys


def _cmd_backbones(args) -> int:
    from ._registry import _all_specs

    specs = [s for s in _all_specs().values() if args.modality in (None, s.modality)]
    if args.pattern:
        import fnmatch

        specs = [s for s in specs if fnmatch.fnmatch(s.name, args.pattern)]
    rows = [("name", "modality", "plugin", "distribution", "features", "weights offline")]
    for spec in sorted(specs, key=lambda s: s.name):
        try:
            dim = str(spec.get_feature_dim())
        except Exception as exc:  # one odd backbone must not break the listing
            dim = f"? ({type(exc).__name__})"
        if spec.weights is None:
            offline = "none (trains from scratch)"
        else:
            offline = "yes" if spec.available_offline() else "no"
        rows.append((spec.name, spec.modality, spec.plugin, spec.distribution, dim, offline))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"\n{len(rows) - 1} backbones")
    return 0


def _cmd_demo(args) -> int:
    from ._demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sktransfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("backbones", help="list every backbone, its plugin, feature size and offline weights")
    p.add_argument("--modality", choices=["image", "text", "tabular"])
    p.add_argument("--pattern", help="shell-style filter on names, e.g. 'timm/resnet*'")
    p.set_defaults(func=_cmd_backbones)
    from ._demo import add_demo_arguments

    d = sub.add_parser("demo", help="baseline vs frozen vs fine-tuned on bundled digits or your own data")
    add_demo_arguments(d)
    d.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:  # our errors say what to do; no traceback needed
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
