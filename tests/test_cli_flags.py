"""The command line refuses what it would ignore, through subprocess: flags that conflict or
don't apply, empty label cells, labels the model never saw, and tables in another encoding.
Each refusal is exit 2 with one line on stderr, writes nothing and leaves the inputs as they were."""

import csv
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


def run(*args, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "sktransfer", *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def refused(*args, says):
    """Exit 2, one line on stderr holding each of ``says``, no traceback."""
    result = run(*args, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in says:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def digest(*paths):
    """The bytes of each file (a folder: each file under it), to check inputs are left alone."""
    files = []
    for path in paths:
        files += sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names) if os.path.isdir(path) \
            else [path]
    return {str(f): hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}


def write_table(path, rows, encoding="utf-8", header=("text", "label")):
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def text_table(tmp_path_factory, sentences):
    texts, labels = sentences
    return write_table(tmp_path_factory.mktemp("flags") / "reviews.csv", zip(texts, labels))


@pytest.fixture(scope="module")
def text_model(text_table):
    model = text_table.parent / "model"
    run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "head", "--epochs", "3", "--out", model,
        "--quiet")
    return model


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, digits):
    X, y = digits
    root = tmp_path_factory.mktemp("images")
    for i, (image, label) in enumerate(zip(X[:6], y[:6])):
        folder = root / ("even" if label % 2 == 0 else "odd")
        folder.mkdir(exist_ok=True)
        Image.fromarray((image * 15).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def test_conflicting_and_inapplicable_flags_are_refused(text_table, image_folder, tmp_path):
    before = digest(text_table, image_folder)
    out = tmp_path / "m"
    fit = ("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--out", out)
    refused(*fit, "--text-column", "text", "--image-column", "path",
            says=["--text-column and --image-column can't be used together"])
    refused(*fit, "--lora-rank", "4", says=["--lora-rank applies to --strategy lora", "--strategy full"])
    refused(*fit, "--strategy", "head", "--lora-rank", "4", says=["--strategy head", "drop --lora-rank"])
    refused(*fit, "--strategy", "head", "--head-epochs", "2", says=["--head-epochs", "--strategy head", "drop it"])
    refused(*fit, "--image-size", "64", says=["--image-size applies to images", "the data is text", "reviews.csv"])
    refused("fit", image_folder, "--backbone", "efficientnet_lite0", "--label-column", "kind", "--out", out,
            says=["--label-column applies to tables", "is a folder", "drop it"])
    refused("fit", image_folder, "--backbone", "efficientnet_lite0", "--text-column", "t", "--encoding", "latin-1",
            "--out", out, says=["--text-column and --encoding apply to tables", "drop them"])
    refused("predict", tmp_path / "model", image_folder / "even", "--id-column", "name", "--out", tmp_path / "p.csv",
            says=["--id-column applies to tables"])
    refused("evaluate", tmp_path / "model", text_table, "--cv", "2", "--unknown-labels", "ignore",
            says=["--unknown-labels applies to the saved model", "--cv"])
    refused("evaluate", tmp_path / "model", text_table, "--force", says=["--force", "no --report"])
    assert not out.exists() and not (tmp_path / "p.csv").exists()
    assert digest(text_table, image_folder) == before


def test_lora_rank_and_head_epochs_still_reach_the_model_where_they_apply(text_table, tmp_path):
    from sktransfer import load

    model = tmp_path / "lora"
    run("fit", text_table, "--backbone", "all-MiniLM-L6-v2", "--strategy", "lora", "--lora-rank", "2",
        "--head-epochs", "0", "--epochs", "1", "--out", model, "--quiet")
    params = load(model).get_params()
    assert (params["lora_rank"], params["head_epochs"]) == (2, 0)


def test_empty_label_cells_are_refused_where_labels_are_needed(text_model, tmp_path, sentences):
    texts, labels = sentences
    rows = [[t, "" if i in (3, 7) else label] for i, (t, label) in enumerate(zip(texts, labels))]
    rows[10][1] = "   "
    table = write_table(tmp_path / "holes.csv", rows)
    before = digest(table)
    says = ["holes.csv' has 3 of 24 row(s) with an empty cell in the label column 'label'", "row 4, 8, 11",
            "'' a class"]
    refused("fit", table, "--backbone", "all-MiniLM-L6-v2", "--out", tmp_path / "m", says=says)
    refused("evaluate", text_model, table, says=says)
    refused("report", text_model, table, "--out", tmp_path / "r.html", says=says)
    run("predict", text_model, table, "--out", tmp_path / "p.csv", "--quiet")  # predict needs no labels
    assert not (tmp_path / "m").exists() and not (tmp_path / "r.html").exists()
    assert digest(table) == before


def test_a_parquet_files_missing_labels_are_empty_cells_not_the_class_nan(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    from sktransfer._cli.data import load_data

    path = tmp_path / "t.parquet"
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", None, np.nan]}).to_parquet(path)
    with pytest.raises(ValueError, match="2 of 3 row.s. with an empty cell"):
        load_data(str(path))
    assert list(load_data(str(path), need_labels=False).y) == ["x", "", ""]
    with pytest.raises(ValueError, match="--encoding applies to CSV and TSV files"):
        load_data(str(path), encoding="latin-1")


def test_labels_the_model_never_saw_are_counted_and_refused_or_left_out(text_model, tmp_path, sentences):
    texts, labels = sentences
    rows = [[t, label] for t, label in zip(texts[:6], labels[:6])]  # 6 'pos'
    rows += [[t, "neutral"] for t in texts[12:15]] + [[texts[20], "Neg"]]
    table = write_table(tmp_path / "new-labels.csv", rows)
    before = digest(table)
    refused("evaluate", text_model, table, says=["4 of 10 rows", "never saw: 'neutral' (3), 'Neg' (1)",
                                                 "Its classes: 'neg', 'pos'", "--unknown-labels ignore"])
    refused("report", text_model, table, "--out", tmp_path / "r.html", says=["4 of 10 rows", "--unknown-labels"])
    result = run("evaluate", text_model, table, "--unknown-labels", "ignore", "--report", tmp_path / "e.html")
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "4 of 10 rows" in warning[0] and "left out of the metrics" in warning[0]
    assert f"{text_model} on 6 texts" in result.stdout
    support = next(line for line in result.stdout.splitlines() if line.strip().startswith("pos"))
    assert support.split()[-1] == "6"  # the 6 known rows, all 'pos'
    assert (tmp_path / "e.html").exists()
    run("report", text_model, table, "--unknown-labels", "ignore", "--out", tmp_path / "r.html", "--quiet")
    assert (tmp_path / "r.html").exists()
    unknown_only = write_table(tmp_path / "unknown.csv", [[t, "neutral"] for t in texts[:4]])
    refused("evaluate", text_model, unknown_only, "--unknown-labels", "ignore", says=["no row is left"])
    assert digest(table) == before


def test_unknown_label_rules_in_process():
    from sktransfer._cli.checks import coerce_labels, known_labels
    from sktransfer._cli.data import Dataset

    data = Dataset(["a", "b", "c"], np.array(["0", "1", "2"]), "text", [0, 1, 2], "texts")
    classifier = SimpleNamespace(classes_=np.array([0, 1]))
    y = coerce_labels(classifier, data.y)  # a table's '0', '1' are a model's 0, 1
    assert y.dtype.kind == "i"
    args = SimpleNamespace(model="m", unknown_labels="ignore")
    X, kept, ids = known_labels(args, classifier, data, y)
    assert X == ["a", "b"] and list(kept) == [0, 1] and ids == [0, 1]
    assert coerce_labels(classifier, np.array(["cat", "dog"])).dtype.kind == "U"
    with pytest.raises(ValueError, match="--unknown-labels applies to classifiers"):
        known_labels(args, SimpleNamespace(), data, y)


def test_tables_in_another_encoding_name_the_file_the_encoding_and_the_flag(text_model, tmp_path):
    rows = [["café au lait, très bon", "pos"], ["naïve et décevant", "neg"]]
    latin = write_table(tmp_path / "latin.csv", rows, encoding="latin-1")
    utf16 = write_table(tmp_path / "utf16.csv", rows, encoding="utf-16")
    utf16le = write_table(tmp_path / "utf16le.csv", rows, encoding="utf-16-le")  # no byte-order mark
    before = digest(latin, utf16, utf16le)
    details = ((latin, "byte 0xe9 at position"), (utf16, "NUL bytes"), (utf16le, "NUL bytes from position 1"))
    for table, detail in details:
        refused("fit", table, "--backbone", "all-MiniLM-L6-v2", "--out", tmp_path / "m",
                says=[repr(str(table)), "is not utf-8 text", detail, "--encoding"])
    refused("evaluate", text_model, latin, says=[repr(str(latin)), "is not utf-8 text", "--encoding"])
    refused("predict", text_model, utf16, "--encoding", "cp1252", "--out", tmp_path / "x.csv",
            says=["is not cp1252 text", "--encoding"])
    bad = run("predict", text_model, latin, "--encoding", "klingon", "--out", tmp_path / "x.csv", check=False)
    assert bad.returncode == 2 and "unknown encoding 'klingon'" in bad.stderr
    for table, encoding in ((latin, "latin-1"), (utf16le, "utf-16-le")):
        out = tmp_path / f"{encoding}.csv"
        run("predict", text_model, table, "--encoding", encoding, "--out", out, "--quiet")
        assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    assert not (tmp_path / "m").exists() and not (tmp_path / "x.csv").exists()
    assert digest(latin, utf16, utf16le) == before


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    from sktransfer._cli.data import load_data

    table = write_table(tmp_path / "bom.csv", [["hello", "a"], ["bye", "b"]], encoding="utf-8-sig")
    data = load_data(str(table))
    assert data.X == ["hello", "bye"] and list(data.y) == ["a", "b"]
