"""Regenerate docs/report-screenshot.png: a real small run, rendered by headless Chromium.

EfficientNet-Lite0, frozen (strategy="head"), at 160 px, on the first 15 training images of
each of flowers12's 12 classes (180), reported on the first 10 test images of each (120).
Needs the sktransfer-timm plugin, its offline weights and the Debian package chromium.
Run from the repository root, with the flowers12 folder (``train/`` and ``test/``, one
sub-folder per class):

    python docs/make_report_screenshot.py /work/shared/data/flowers12
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sktransfer import TransferClassifier
from sktransfer.report import html_report


def first_images(folder: Path, per_class: int):
    X, y = [], []
    for label in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        files = sorted(str(p) for p in (folder / label).iterdir())[:per_class]
        X += files
        y += [label] * len(files)
    return X, np.array(y)


root = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/flowers12")
X_train, y_train = first_images(root / "train", 15)
X_test, y_test = first_images(root / "test", 10)
clf = TransferClassifier("efficientnet_lite0", strategy="head", image_size=160, random_state=0).fit(X_train, y_train)
with tempfile.TemporaryDirectory() as tmp:
    page = html_report(clf, X_test, y_test, Path(tmp) / "report.html")
    out = Path(__file__).with_name("report-screenshot.png").resolve()
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={out}",
                    "--window-size=1200,4000", "--hide-scrollbars", Path(page).resolve().as_uri()],
                   check=True, capture_output=True)
print(f"accuracy {clf.score(X_test, y_test):.3f}; wrote {out}")
