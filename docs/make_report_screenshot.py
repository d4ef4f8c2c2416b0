"""Regenerate docs/report-screenshot.png: a real small run, rendered by headless Chromium.

EfficientNet-Lite0, frozen (strategy="head"), on 200 of scikit-learn's 8x8 digits at 64 px,
reported on 300 others. Needs the sktransfer-timm plugin, its offline weights and the
Debian package chromium. Run from the repository root:

    python docs/make_report_screenshot.py
"""

import subprocess
import tempfile
from pathlib import Path

from sklearn.datasets import load_digits

from sktransfer import TransferClassifier
from sktransfer.report import html_report

digits = load_digits()
X = digits.images / 16.0  # floats in [0, 1]: shown as the model sees them, black to white
y = digits.target
clf = TransferClassifier("efficientnet_lite0", strategy="head", image_size=64, max_epochs=10,
                         validation_fraction=0.2, random_state=0).fit(X[:200], y[:200])
with tempfile.TemporaryDirectory() as tmp:
    page = html_report(clf, X[200:500], y[200:500], Path(tmp) / "report.html",
                       title="EfficientNet-Lite0, frozen, on 200 digits at 64 px")
    out = Path(__file__).with_name("report-screenshot.png").resolve()
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={out}",
                    "--window-size=1000,3300", "--hide-scrollbars", Path(page).resolve().as_uri()],
                   check=True, capture_output=True)
print(f"accuracy {clf.score(X[200:500], y[200:500]):.3f}; wrote {out}")
