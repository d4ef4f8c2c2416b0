"""What a search sends to its workers and back: pickle sizes of unfitted and fitted estimators.

    python benchmarks/pickle_sizes.py [--tag NAME]

Sizes are ``len(pickle.dumps(estimator))`` for: an unfitted estimator; fitted frozen
(``strategy="head"``) models on EfficientNet-Lite0 (48 digits at 32 px) and
all-MiniLM-L6-v2 (24 sentences); and a fine-tuned EfficientNet-Lite0 (``strategy="full"``),
whose weights are its own. Also the size of the pretrained weights alone, for scale.
Saves results/pickle_sizes[-TAG]-<device>.json. Run it at two commits (``--tag``) to
compare; sizes don't depend on the machine's load.
"""

from __future__ import annotations

import argparse
import io
import pickle

import numpy as np
from _common import digits_images, save_result

SENTENCES = [f"{word} film, {adverb} {verdict}" for word in ("a good", "a bad", "an odd")
             for adverb in ("truly", "rather") for verdict in ("loved it", "hated it", "fine", "meh")]


def weights_bytes(name: str) -> int:
    import torch

    from sktransfer import get_spec

    buffer = io.BytesIO()
    torch.save(get_spec(name).build(pretrained=True).state_dict(), buffer)
    return buffer.tell()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="", help="suffix of the result file (e.g. the commit measured)")
    args = parser.parse_args()

    from sktransfer import TransferClassifier

    X, y = digits_images(48)
    labels = np.arange(len(SENTENCES)) % 2
    sizes = {
        "unfitted": len(pickle.dumps(TransferClassifier("efficientnet_lite0", strategy="head"))),
        "efficientnet_lite0 weights (torch.save of the state_dict)": weights_bytes("efficientnet_lite0"),
        "all-MiniLM-L6-v2 weights (torch.save of the state_dict)": weights_bytes("all-MiniLM-L6-v2"),
    }
    fits = {
        "fitted frozen efficientnet_lite0 (strategy='head')":
            (TransferClassifier("efficientnet_lite0", strategy="head", image_size=32, max_epochs=2), X, y),
        "fitted frozen all-MiniLM-L6-v2 (strategy='head')":
            (TransferClassifier("all-MiniLM-L6-v2", strategy="head", max_epochs=2), SENTENCES, labels),
        "fitted fine-tuned efficientnet_lite0 (strategy='full')":
            (TransferClassifier("efficientnet_lite0", strategy="full", image_size=32, max_epochs=1), X, y),
    }
    for name, (estimator, data, target) in fits.items():
        estimator.set_params(random_state=0).fit(data, target)
        sizes[name] = len(pickle.dumps(estimator))
    for name, size in sizes.items():
        print(f"{name}: {size:,} bytes")
    save_result("pickle_sizes" + (f"-{args.tag}" if args.tag else ""), {"bytes": sizes})


if __name__ == "__main__":
    main()
