"""Command line (also ``python -m sktransfer``): ``fit``, ``predict``, ``evaluate``, ``report`` on,
``export``, ``push`` and ``serve`` models, list ``backbones``, manage the feature ``cache``, run the ``demo``.

Exit codes: 0 done, 2 bad usage or input (a one-line message, no traceback), 1 an
unexpected error (with its traceback).
"""

from __future__ import annotations

import argparse
import sys


def _offline(spec) -> str:
    if spec.weights is None:
        return "none (trains from scratch)"
    return "yes" if spec.available_offline() else "no"


def _feature_size(spec) -> str:
    try:
        return str(spec.get_feature_dim())
    except Exception as exc:  # one odd backbone must not break the listing
        return f"? ({type(exc).__name__})"


def _usable_offline(spec) -> bool:
    """Weights on this machine, or a backbone a plugin lists that needs none (mlp); not the
    thousands of names a plugin resolves on demand (timm/...) without their weights."""
    if spec.weights is None:
        return "/" not in spec.name
    return spec.available_offline()


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _cmd_backbones(args) -> int:
    from sktransfer._spec.registry import get_spec, list_backbones

    if args.details is not None:
        return _print_details(get_spec(args.details))
    # Specs are built only for the names printed (timm/... are resolved one by one).
    names = list_backbones(modality=args.modality, pattern=args.pattern)
    specs = [get_spec(name) for name in names]
    shown = specs if args.all else [spec for spec in specs if _usable_offline(spec)]
    rows = [("name", "modality", "plugin", "distribution", "features", "weights offline")]
    for spec in shown:
        rows.append((spec.name, spec.modality, spec.plugin, spec.distribution, _feature_size(spec), _offline(spec)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    footer = _plural(len(shown), "backbone")
    hidden = len(specs) - len(shown)
    if not args.all and hidden:
        footer += f" usable offline; {hidden:,} more (weights to download, or names without pretrained weights): " \
                  "--all lists them"
    print(f"\n{footer}")
    return 0


def _print_details(spec) -> int:
    """Everything the spec says, building no model."""
    from sktransfer._spec.registry import ImagePreprocessing, TextPreprocessing

    prep = spec.preprocessing
    if isinstance(prep, ImagePreprocessing):
        preprocessing = (
            f"image {prep.input_size}px (resize {prep.resize_size or prep.input_size}, {prep.interpolation}"
            f"{', fixed size' if prep.fixed_size else ''}), mean {prep.mean}, std {prep.std}"
        )
    elif isinstance(prep, TextPreprocessing):
        preprocessing = f"tokenizer {prep.tokenizer}, max_length {prep.max_length}"
    else:
        preprocessing = "none (numeric features, standardised by the estimator)" if prep is None else repr(prep)
    blocks = ", ".join(spec.blocks) if not callable(spec.blocks) else "computed from the built model"
    try:
        stages = spec.get_stages()
        stage_text = ", ".join(stages) if stages else "none (final features only)"
    except Exception as exc:
        stage_text = f"? ({exc!r})"
    if spec.weights is None:
        weights = "none (trains from scratch)"
    else:
        weights = f"{spec.weights.source}; on this machine: {_offline(spec)}"
        if _offline(spec) == "no" and spec.weights.advice:
            weights += f". {spec.weights.advice}"
    rows = [
        ("name", spec.name),
        ("modality", spec.modality),
        ("plugin", f"{spec.plugin} ({spec.distribution})"),
        ("description", spec.description or "-"),
        ("features", _feature_size(spec)),
        ("preprocessing", preprocessing),
        ("blocks", blocks or "none"),
        ("stages", stage_text),
        ("weights", weights),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0


def _cmd_demo(args) -> int:
    from sktransfer._cli.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sktransfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("backbones", help="list the backbones usable offline (--all: every one), their plugin, "
                                         "feature size and weights")
    p.add_argument("--modality", choices=["image", "text", "tabular"])
    p.add_argument("--pattern", help="shell-style filter on names, e.g. 'timm/resnet*'")
    p.add_argument("--all", action="store_true",
                   help="also list backbones whose weights are not on this machine (by default only those usable "
                        "offline are listed)")
    p.add_argument(
        "--details",
        metavar="NAME",
        help="show one backbone's spec: modality, plugin, feature size, preprocessing, blocks, stages, weights",
    )
    p.set_defaults(func=_cmd_backbones)
    from sktransfer._cli.demo import add_demo_arguments

    d = sub.add_parser("demo", help="baseline vs frozen vs fine-tuned on bundled digits or your own data")
    add_demo_arguments(d)
    d.set_defaults(func=_cmd_demo)
    from sktransfer._cli import commands as commands

    f = sub.add_parser("fit", help="fit a model on a folder of images or a table, and save it to --out")
    commands.add_fit_arguments(f)
    f.set_defaults(func=commands.cmd_fit)
    p = sub.add_parser("predict", help="write a model's predictions (and class probabilities) to a CSV file")
    commands.add_predict_arguments(p)
    p.set_defaults(func=commands.cmd_predict)
    e = sub.add_parser("evaluate", help="a model's metrics on labelled data, optionally cross-validated or as HTML")
    commands.add_evaluate_arguments(e)
    e.set_defaults(func=commands.cmd_evaluate)
    r = sub.add_parser("report", help="write a self-contained HTML report of a model on labelled data")
    commands.add_report_arguments(r)
    r.set_defaults(func=commands.cmd_report)
    from sktransfer._cli import cache

    c = sub.add_parser("cache", help="show (info) or empty (clear) the feature cache the commands share")
    cache.add_cache_arguments(c)
    c.set_defaults(func=cache.cmd_cache)
    x = sub.add_parser("export", help="export a model directory to ONNX, for prediction with onnxruntime (no torch)")
    commands.add_export_arguments(x)
    x.set_defaults(func=commands.cmd_export)
    from sktransfer._cli import sharing

    s = sub.add_parser("push", help="upload a model directory to the Hugging Face Hub (owner/name)")
    sharing.add_push_arguments(s)
    s.set_defaults(func=sharing.cmd_push)
    s = sub.add_parser("serve", help="serve a model's predictions over HTTP with MLflow's scoring server")
    sharing.add_serve_arguments(s)
    s.set_defaults(func=sharing.cmd_serve)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)  # bad usage: argparse exits with 2
    from sktransfer._features.progress import progress_scope

    try:
        # Progress bars on every long step unless --quiet; the estimators' own verbose (the
        # epoch table) stays each command's choice.
        with progress_scope(0 if getattr(args, "quiet", False) else 1):
            return args.func(args)
    except BrokenPipeError:  # output piped into `head`: stop quietly, as command-line tools do
        sys.stderr.close()
        return 0
    except (ValueError, TypeError, OSError, ImportError) as exc:  # our errors say what to do (a missing extra too)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"interrupted: {exc}" if str(exc) else "interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug, not the user's input: show where
        import traceback

        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
