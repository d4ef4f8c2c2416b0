"""Screening for issue 21, section 2: post-hoc ensembles of the linear probe and the fine-tuned model.

    python benchmarks/weight_ensemble.py --sets nyt tweets --seeds 0 4
    python benchmarks/weight_ensemble.py --sets flowers12 --k 8 --seeds 0 1 2

For every draw of ``few_shot.py`` (same sets, test rows and k-per-class draws) it fits the
defaults of the sktransfer under test once (``TransferClassifier(backbone, random_state=seed)``,
whose fit runs a converged probe then fine-tunes; ``wise_alpha=1.0`` where that parameter exists) and the probe alone (``strategy="head"``,
the very head the defaults start from), then scores on the test rows:

  lr          frozen embeddings + ``LogisticRegression()`` (as in few_shot.py)
  ft          the fine-tuned weights as they are (alpha = 1)
  wise_<a>    every weight at ``(1 - a) * probe + a * fine-tuned`` (WiSE-FT, Wortsman et al. 2022):
              the pretrained body with the probe's head at a = 0
  proba_avg   the mean of the probe's and the fine-tuned model's probabilities

So one fine-tuning gives every alpha. With ``--extra name=json`` the fine-tuning takes those
parameters too (for example ``--extra lowlr='{"backbone_lr": 2e-5}'``), each a second model
that is scored the same way (prefixed ``name:``). Results: results/<name>-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TQDM_DISABLE"):
    os.environ.setdefault(_var, "1")

import numpy as np
from _common import save_result
from few_shot import IMAGE_SETS, RESERVED, TEXT_BACKBONE, draw, load_image_set, load_text_set

ALPHAS = (0.25, 0.5, 0.75)


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def scores(clf, probe_state, ft_state, probe_proba, X_test, y_test, alphas):
    """Accuracy of the fine-tuned weights, of each interpolation, and of the probability average."""
    import torch

    module = clf.net_.module_
    out = {}
    proba_ft = clf.predict_proba(X_test)
    out["ft"] = float(np.mean(clf.classes_[proba_ft.argmax(1)] == y_test))
    out["proba_avg"] = float(np.mean(clf.classes_[(proba_ft + probe_proba).argmax(1)] == y_test))
    for a in alphas:
        mixed = {k: (torch.lerp(probe_state[k].to(v.dtype), v, a) if v.is_floating_point() else v)
                 for k, v in ft_state.items()}
        module.load_state_dict(mixed)
        proba = clf.predict_proba(X_test)
        out[f"wise_{a}"] = float(np.mean(clf.classes_[proba.argmax(1)] == y_test))
    module.load_state_dict(ft_state)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["nyt", "tweets"])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    parser.add_argument("--extra", nargs="*", default=[], help="name=json: fine-tuning parameters of a variant")
    parser.add_argument("--no-default", action="store_true", help="score only the --extra variants")
    parser.add_argument("--vader-dir", default=os.path.join("..", "shared", "data", "vader"))
    parser.add_argument("--flowers-dir", default=os.path.join("..", "shared", "data", "flowers12"))
    parser.add_argument("--image-backbone", default="efficientnet_lite0")
    parser.add_argument("--name", default="weight_ensemble")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression

    from sktransfer import MemoryFeatureStore, TransferClassifier, TransferEmbedder

    # The fine-tuned end point as it is: an sktransfer with wise_alpha would otherwise interpolate itself.
    plain = {"wise_alpha": 1.0} if "wise_alpha" in TransferClassifier("mlp").get_params() else {}
    variants = [] if args.no_default else [("", {})]
    variants += [(name + ":", json.loads(spec)) for name, spec in (e.split("=", 1) for e in args.extra)]
    rows = []
    for set_name in args.sets:
        if set_name in IMAGE_SETS:
            X_test, y_test, X_pool, y_pool = load_image_set(args.flowers_dir)
            backbone = args.image_backbone
        else:
            X_test, y_test, X_pool, y_pool = load_text_set(args.vader_dir, set_name, RESERVED)
            backbone = TEXT_BACKBONE
        for seed in args.seeds:
            X_train, y_train = draw(X_pool, y_pool, args.k, seed)
            row = {"set": set_name, "k": args.k, "seed": seed, "n_test": len(X_test)}
            embedder = TransferEmbedder(backbone).fit(X_train)
            lr = LogisticRegression(C=1.0, max_iter=1000).fit(embedder.transform(X_train), y_train)
            row["lr"] = float(np.mean(lr.predict(embedder.transform(X_test)) == y_test))
            probe = TransferClassifier(backbone, strategy="head", random_state=seed).fit(X_train, y_train)
            probe_proba = probe.predict_proba(X_test)
            row["probe"] = float(np.mean(probe.classes_[probe_proba.argmax(1)] == y_test))
            probe_state = state(probe.net_.module_)
            for prefix, params in variants:
                start = time.perf_counter()
                clf = TransferClassifier(backbone, random_state=seed, feature_cache=MemoryFeatureStore(),
                                         **{**plain, **params}).fit(X_train, y_train)
                row[prefix + "fit_s"] = time.perf_counter() - start
                ft_state = state(clf.net_.module_)
                assert ft_state.keys() == probe_state.keys(), "the probe's and the fine-tuned weights differ"
                found = scores(clf, probe_state, ft_state, probe_proba, X_test, y_test, args.alphas)
                row.update({prefix + key: value for key, value in found.items()})
            print(json.dumps(row), flush=True)
            rows.append(row)
            save_result(args.name, {"k": args.k, "alphas": args.alphas, "variants": dict(variants), "runs": rows})


if __name__ == "__main__":
    main()
