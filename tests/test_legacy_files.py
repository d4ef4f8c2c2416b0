"""Model directories and pickles written by an older sktransfer still load and predict the same.

The fixtures in ``tests/legacy/files/`` were written once by ``tests/legacy/make_fixtures.py``
(see its docstring; ``manifest.json`` names the commit). They must never be regenerated to
make this test pass: a failure means today's code no longer reads old files the same way.
"""

import importlib.util
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

import sktransfer

FILES = Path(__file__).parent / "legacy" / "files"
MANIFEST = json.loads((FILES / "manifest.json").read_text())
RTOL, ATOL = MANIFEST["tolerance"]["rtol"], MANIFEST["tolerance"]["atol"]

# A loaded model must compute its features, not find the ones another test cached.
pytestmark = pytest.mark.usefixtures("fresh_feature_cache")


def read_input(entry: dict):
    """The input an entry describes: ``npy`` (an array), ``json_texts`` (a list of str),
    ``npz_frame`` (a DataFrame, one array per column; ``array_cells`` columns hold one
    array per row, ``str_cells`` columns strings). Nothing is unpickled."""
    path = FILES / entry["file"]
    if entry["format"] == "npy":
        return np.load(path, allow_pickle=False)
    if entry["format"] == "json_texts":
        return json.loads(path.read_text())
    if entry["format"] == "npz_frame":
        import pandas as pd

        with np.load(path, allow_pickle=False) as data:
            columns = {}
            for column in entry["columns"]:
                values = data[column]
                if column in entry.get("array_cells", ()):
                    values = list(values)
                elif column in entry.get("str_cells", ()):
                    values = values.tolist()
                columns[column] = values
        return pd.DataFrame(columns, columns=entry["columns"])
    raise ValueError(f"unknown input format {entry['format']!r}")


def load_fixture(fixture: dict):
    path = FILES / fixture["path"]
    if fixture["kind"] == "model_dir":
        return sktransfer.load(path, device="cpu")
    assert fixture["kind"] == "pickle"
    return pickle.loads(path.read_bytes())


@pytest.mark.parametrize("fixture", MANIFEST["fixtures"], ids=[f["name"] for f in MANIFEST["fixtures"]])
def test_legacy_fixture_predicts_as_when_saved(fixture):
    missing = [module for module in fixture["needs"] if importlib.util.find_spec(module) is None]
    if missing:
        pytest.skip(f"{fixture['name']} needs {', '.join(missing)}")
    estimator = load_fixture(fixture)
    assert type(estimator).__name__ == fixture["estimator"]
    X = read_input(fixture["input"])
    for method, file in fixture["expected"].items():
        expected = np.load(FILES / file, allow_pickle=False)
        got = np.asarray(getattr(estimator, method)(X))
        assert got.shape == expected.shape, f"{method}: shape {got.shape}, saved {expected.shape}"
        assert got.dtype == expected.dtype, f"{method}: dtype {got.dtype}, saved {expected.dtype}"
        if method == "predict" and not np.issubdtype(expected.dtype, np.floating):
            np.testing.assert_array_equal(got, expected, err_msg=f"{fixture['name']}.{method}")
        else:
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"{fixture['name']}.{method}")


def test_manifest_lists_every_fixture_file():
    """Every file under files/ is a manifest entry's model, input or expected output."""
    listed = {"manifest.json"}
    for fixture in MANIFEST["fixtures"]:
        listed |= {fixture["input"]["file"], *fixture["expected"].values()}
        path = FILES / fixture["path"]
        listed |= {p.relative_to(FILES).as_posix() for p in path.rglob("*")} if path.is_dir() else {fixture["path"]}
        assert path.exists(), fixture["path"]
    on_disk = {p.relative_to(FILES).as_posix() for p in FILES.rglob("*") if p.is_file()}
    assert on_disk == listed
