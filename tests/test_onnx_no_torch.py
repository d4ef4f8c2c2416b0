"""The ONNX predictor runs in a process where torch can't be imported, and ``import sktransfer``
doesn't import onnx or onnxruntime."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _onnx_models import SENTENCES, TEXTS, save_tiny_bert, tabular
from _tiny_backbones import brightness_images

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import sktransfer
from sktransfer import TransferClassifier, TransferEmbedder, TransferRegressor, export_onnx

PACKAGE = os.path.dirname(sktransfer.__file__)
FORBIDDEN = ("torch", "torchvision", "transformers", "skorch", "peft", "sklearn", "scipy", "pandas", "timm")

# Blocks the heavy libraries (``import torch`` raises ImportError), then does what a serving
# process does: a plain ``import sktransfer`` and ``sktransfer.load_onnx``. Prints what it
# predicted, which sktransfer it imported and which heavy modules got loaded anyway.
SCRIPT = textwrap.dedent("""
    import json, sys
    for name in {forbidden!r}:
        sys.modules[name] = None

    import numpy as np
    import sktransfer

    out = {{}}
    for name, (path, method, X) in json.loads(sys.argv[1]).items():
        X = np.asarray(X) if name in ("tabular", "image", "init") else X
        out[name] = getattr(sktransfer.load_onnx(path), method)(X).tolist()
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r} and sys.modules[m] is not None)
    print(json.dumps({{"out": out, "loaded": loaded, "package": sktransfer.__file__}}))
""")


def run_without_torch(jobs: dict) -> dict:
    script = SCRIPT.format(forbidden=FORBIDDEN)
    result = subprocess.run([sys.executable, "-c", script, json.dumps(jobs)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_predictor_needs_no_torch(tmp_path):
    tiny = save_tiny_bert(tmp_path / "bert")
    text = TransferClassifier(tiny, max_length=16, long_text="chunk", max_epochs=1, random_state=0)
    text.fit(SENTENCES, [0, 1] * 4)
    X_img, _ = brightness_images(12)
    image = TransferEmbedder("example_tinycnn", image_size=16, feature_cache=None, random_state=0).fit(X_img)
    X_tab, y_tab = tabular()
    reg = TransferRegressor("mlp", max_epochs=2, random_state=0).fit(X_tab, y_tab * 3.0)
    columns = {"review": TEXTS, "price": list(range(len(TEXTS)))}  # a dict of columns: no pandas
    fused = TransferRegressor({"review": tiny, "price": "passthrough"}, max_length=16, max_epochs=1,
                              random_state=0).fit(columns, np.arange(len(TEXTS)) * 2.0)
    source = TransferClassifier("mlp", max_epochs=2, random_state=0).fit(X_tab, y_tab > 0)
    init = TransferClassifier("mlp", init=source, max_epochs=2, random_state=1).fit(X_tab, y_tab > 0)
    jobs = {
        "text": (str(export_onnx(text, tmp_path / "text")), "predict_proba", TEXTS),
        "image": (str(export_onnx(image, tmp_path / "image")), "transform", X_img.tolist()),
        "tabular": (str(export_onnx(reg, tmp_path / "reg")), "predict", X_tab.tolist()),
        "fused": (str(export_onnx(fused, tmp_path / "fused")), "predict", columns),
        "init": (str(export_onnx(init, tmp_path / "init")), "predict_proba", X_tab.tolist()),  # init/ runs too
    }
    result = run_without_torch(jobs)
    assert result["loaded"] == []
    assert os.path.dirname(result["package"]) == PACKAGE  # the package under test, imported whole
    np.testing.assert_allclose(result["out"]["text"], text.predict_proba(TEXTS), atol=1e-4)
    np.testing.assert_allclose(result["out"]["image"], image.transform(X_img), atol=1e-3)
    np.testing.assert_allclose(result["out"]["tabular"], reg.predict(X_tab), atol=1e-4)
    np.testing.assert_allclose(result["out"]["fused"], fused.predict(columns), atol=1e-4)
    np.testing.assert_allclose(result["out"]["init"], init.predict_proba(X_tab), atol=1e-4)


def test_import_sktransfer_leaves_onnx_out():
    code = "import sys, sktransfer; print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert result.stdout.strip() == "[]"


def test_without_onnxruntime_the_error_names_the_extra(tmp_path):
    X, y = tabular()
    path = export_onnx(TransferClassifier("mlp", max_epochs=1, random_state=0).fit(X, y), tmp_path / "clf")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["onnxruntime"] = None
        sys.modules["onnxscript"] = None
        from sktransfer import export_onnx, load_onnx
        for call in (lambda: load_onnx({str(path)!r}), lambda: export_onnx({str(path)!r}, {str(tmp_path / 'x')!r})):
            try:
                call()
            except ImportError as exc:
                print(type(exc).__name__, exc)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all("pip install 'sktransfer[onnx]'" in line for line in lines), result.stdout
    assert lines[0].startswith("ModuleNotFoundError") and "onnxruntime" in lines[0]
