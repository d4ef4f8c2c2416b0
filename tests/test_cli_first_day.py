"""A user's first day on the command line, through subprocess: unlabelled folders, globs and
file lists, ids and float precision, modality checks, the feature cache, per-fold scores,
the backbone listing and the report command."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run(*args, check=True, env=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "sktransfer", *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    return {"SKTRANSFER_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def images(tmp_path_factory, digits):
    """A labelled folder (even/odd) and a flat folder of the same 12 images, unlabelled."""
    X, y = digits
    root = tmp_path_factory.mktemp("first-day")
    labelled, flat = root / "labelled", root / "new_photos"
    flat.mkdir()
    for i, (image, label) in enumerate(zip(X[:12], y[:12])):
        folder = labelled / ("even" if label % 2 == 0 else "odd")
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray((image * 15).astype(np.uint8))
        picture.save(folder / f"{i}.png")
        picture.save(flat / f"photo{i:02d}.png")
    return labelled, flat


@pytest.fixture(scope="module")
def image_model(images, tmp_path_factory, cache_env):
    labelled, _ = images
    model = tmp_path_factory.mktemp("model") / "m"
    run("fit", labelled, "--backbone", "efficientnet_lite0", "--strategy", "head", "--image-size", "32",
        "--epochs", "3", "--out", model, "--quiet", env=cache_env)
    return model


def test_image_extensions_match_the_adapters():
    from sktransfer._cli.data import IMAGE_EXTENSIONS
    from sktransfer._inputs.checks import IMAGE_FILE_SUFFIXES
    from sktransfer._inputs.pixels import IMAGE_EXTENSIONS as ADAPTER_EXTENSIONS

    assert IMAGE_EXTENSIONS == ADAPTER_EXTENSIONS == IMAGE_FILE_SUFFIXES


def test_predict_on_a_flat_folder_a_glob_and_a_list_of_files(images, image_model, tmp_path, cache_env):
    from sktransfer import load

    _, flat = images
    out = tmp_path / "flat.csv"
    run("predict", image_model, flat, "--out", out, "--quiet", env=cache_env)
    rows = rows_of(out)
    files = sorted(str(flat / name) for name in os.listdir(flat))
    assert [r["path"] for r in rows] == files
    expected = load(image_model).predict_proba(files)
    got = np.array([[float(r["proba_even"]), float(r["proba_odd"])] for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # 6 significant digits by default: "0.123457", never 17 digits.
    assert all(len(r["proba_even"].lstrip("0.").replace("e-", "")) <= 8 for r in rows)
    run("predict", image_model, str(flat / "photo0*.png"), "--out", tmp_path / "glob.csv", "--quiet",
        "--float-format", "%.2f", env=cache_env)
    globbed = rows_of(tmp_path / "glob.csv")
    assert [r["path"] for r in globbed] == files[:10] and all(len(r["proba_odd"]) == 4 for r in globbed)
    run("predict", image_model, files[3], files[1], "--out", tmp_path / "two.csv", "--quiet", env=cache_env)
    assert [r["path"] for r in rows_of(tmp_path / "two.csv")] == [files[3], files[1]]
    bad = run("predict", image_model, flat, "--out", tmp_path / "x.csv", "--float-format", "%d%d", check=False)
    assert bad.returncode == 2 and "--float-format" in bad.stderr


def test_predict_on_a_table_with_a_path_column_and_an_id_column(images, image_model, tmp_path, cache_env):
    _, flat = images
    table = tmp_path / "new.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["photo_id", "path"])
        for i, name in enumerate(sorted(os.listdir(flat))[:4]):
            writer.writerow([f"id-{i}", str(flat / name)])
    run("predict", image_model, table, "--id-column", "photo_id", "--out", tmp_path / "p.csv", "--quiet",
        env=cache_env)
    rows = rows_of(tmp_path / "p.csv")
    assert [r["photo_id"] for r in rows] == ["id-0", "id-1", "id-2", "id-3"]
    bad = run("predict", image_model, table, "--id-column", "photo", "--out", tmp_path / "q.csv", check=False)
    assert bad.returncode == 2 and "'photo_id'" in bad.stderr and "--id-column" in bad.stderr


def test_fit_and_evaluate_refuse_unlabelled_and_empty_class_folders(images, image_model, tmp_path):
    _, flat = images
    result = run("evaluate", image_model, flat, check=False)
    assert result.returncode == 2 and "no class sub-folders" in result.stderr
    empty = tmp_path / "with-empty"
    for name in ("cats", "dogs"):
        (empty / name).mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(empty / "cats" / "a.png")
    result = run("fit", empty, "--backbone", "efficientnet_lite0", "--out", tmp_path / "m", check=False)
    assert result.returncode == 2 and "dogs" in result.stderr and "hold no images" in result.stderr


def test_a_text_model_refuses_image_paths(text_model, images, tmp_path):
    _, flat = images
    table = tmp_path / "photos.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path"])
        writer.writerows([[str(flat / name)] for name in sorted(os.listdir(flat))])
    for command in (["predict", text_model, table, "--out", tmp_path / "p.csv"], ["evaluate", text_model, table]):
        result = run(*command, check=False)
        assert result.returncode == 2, result.stdout
        assert "takes text" in result.stderr and "image paths" in result.stderr
    assert not (tmp_path / "p.csv").exists()
    # A text column that holds file names: the Python API refuses it too.
    from sktransfer import load
    from sktransfer.exceptions import InputModalityError

    with pytest.raises(InputModalityError, match="looks like image paths.*takes text"):
        load(text_model).predict([str(flat / "photo01.png"), "b.jpg"])


@pytest.fixture(scope="module")
def text_table(tmp_path_factory, sentences):
    texts, labels = sentences
    table = tmp_path_factory.mktemp("text") / "reviews.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "score"])
        for i, (text, label) in enumerate(zip(texts, labels)):
            writer.writerow([text, label, (1.0 if label == "pos" else -1.0) + 0.01 * i])
    return table


@pytest.fixture(scope="module")
def text_model(text_table):
    model = text_table.parent / "model"
    run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "head", "--epochs", "5", "--out", model)
    return model


def test_cli_models_keep_python_defaults(text_model):
    from sktransfer import load

    params = load(text_model).get_params()
    assert params["verbose"] == 0 and params["feature_cache"] == "memory"


def test_cross_validation_prints_each_fold_and_mean_std(text_model, text_table, sentences):
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    from sktransfer import load

    out = run("evaluate", text_model, "reviews.csv", "--cv", "3", check=False)
    assert out.returncode == 2  # a relative path that isn't there
    out = run("evaluate", text_model, text_table, "--cv", "3").stdout
    for fold in (1, 2, 3):
        assert f"--- fold {fold}/3" in out
    accuracy = next(line for line in out.splitlines() if line.startswith("accuracy ") and "mean" in line)
    values = [float(v) for v in accuracy.split("mean")[0].split()[1:]]
    mean = float(accuracy.split("mean")[1].split()[0])
    std = float(accuracy.split("std")[1].split()[0])
    assert len(values) == 3 and mean == pytest.approx(np.mean(values), abs=1e-4)
    assert std == pytest.approx(np.std(values), abs=1e-4)
    # The same folds and the same fresh fits as scikit-learn's cross_validate would use.
    texts, labels = sentences
    model = load(text_model)
    by_hand = [clone(model).fit([texts[i] for i in tr], labels[tr]).score([texts[i] for i in te], labels[te])
               for tr, te in StratifiedKFold(3).split(texts, labels)]
    np.testing.assert_allclose(values, by_hand, atol=1e-4)
    assert "f1_macro" in out and "pooled over the folds" in out


def test_a_regressor_without_label_column_names_the_fix(text_model, text_table, tmp_path):
    regressor = tmp_path / "reg"
    run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "head", "--task", "regress",
        "--label-column", "score", "--epochs", "3", "--out", regressor, "--quiet")
    result = run("evaluate", regressor, text_table, check=False)
    assert result.returncode == 2 and "--label-column" in result.stderr and "--task" not in result.stderr


def test_report_command_and_feature_cache(text_model, text_table, tmp_path):
    cache = tmp_path / "features"
    html = tmp_path / "report.html"
    run("report", text_model, text_table, "--out", html, "--feature-cache", cache, "--quiet")
    page = html.read_text()
    assert "I love this movie" in page or "What a great day" in page or "<td" in page
    info = run("cache", "info", "--feature-cache", cache).stdout
    assert "rows: 24" in info
    run("predict", text_model, text_table, "--out", tmp_path / "p.csv", "--feature-cache", cache)
    assert "rows: 24" in run("cache", "info", "--feature-cache", cache).stdout  # the same rows, reused
    assert "cleared 24" in run("cache", "clear", "--feature-cache", cache).stdout
    assert "rows: 0" in run("cache", "info", "--feature-cache", cache).stdout


def test_the_cache_keeps_under_its_limit(tmp_path):
    from sktransfer._features.stores import DiskFeatureStore

    store = DiskFeatureStore(tmp_path)
    store.put_many({bytes([i]) * 16: np.full(100, i, dtype=np.float32) for i in range(10)})
    assert store.trim(4 * 416 + 10) == 6 and len(store) == 4  # 16 + 400 bytes a row: the 6 oldest dropped
    assert sorted(store.get_many([bytes([i]) * 16 for i in range(10)])) == [bytes([i]) * 16 for i in range(6, 10)]
    assert store.trim(10**6) == 0 and len(store) == 4


def test_backbones_lists_offline_ones_by_default():
    out = run("backbones").stdout
    assert "all-MiniLM-L6-v2" in out and "timm/resnet18" not in out and "--all lists them" in out
    one = run("backbones", "--pattern", "all-MiniLM*").stdout
    assert one.rstrip().endswith("1 backbone usable offline") or "\n1 backbone" in one
    everything = run("backbones", "--all", "--modality", "tabular").stdout
    assert "mlp" in everything and "backbones" in everything.splitlines()[-1]


def test_unknown_names_get_a_suggestion(text_model, text_table, tmp_path):
    result = run("backbones", "--details", "all-MiniLM-L6", check=False)
    assert result.returncode == 2 and "all-MiniLM-L6-v2" in result.stderr
    result = run("evaluate", text_model, text_table, "--label-column", "lable", check=False)
    assert result.returncode == 2 and "Did you mean 'label'" in result.stderr
