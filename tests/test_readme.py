"""The README's quick start (and its deploying lines) runs as written, on the real data it names, and prints what
its comments say (``../shared/data`` beside the repository, as in CI)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
NUMBER = re.compile(r"-?\d+\.\d+")


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {re.escape(marker)} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"README.md has no python block after <!-- {marker} -->"
    return match.group(1)


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 150


@pytest.mark.skipif(not (DATA / "flowers12").is_dir() or not (DATA / "vader").is_dir(),
                    reason="the quick start reads ../shared/data (flowers12 and vader), absent here")
def test_quick_start_runs_and_prints_its_comments(tmp_path):
    code = "".join(readme_block(name) for name in ("quick start", "quick start, continued", "quick start, deploying"))
    # run where a user's project would be, with the data beside it, so its exports land in tmp_path
    (tmp_path / "shared").symlink_to(DATA.parent, target_is_directory=True)
    (tmp_path / "project").mkdir()
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "project", capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    # every "print(...)  # figure" line: the figures in the comments are the ones printed
    printed = result.stdout.splitlines()
    expected = [line.split("  # ", 1)[1] for line in code.splitlines() if line.startswith("print(") and "  # " in line]
    assert len(printed) == len(expected) == 6
    for out, comment in zip(printed, expected):
        shown, measured = NUMBER.findall(comment), [float(x) for x in NUMBER.findall(out)]
        assert len(measured) == len(shown), (out, comment)
        for figure, value in zip(shown, measured):  # each figure, to within 2 units of its last decimal
            # (int8 answers move in the third digit with the CPU's thread count)
            assert abs(value - float(figure)) <= 2 * 10 ** -len(figure.split(".")[1]) + 1e-12, (out, comment)
        assert " ".join(NUMBER.sub("", comment).split()) in " ".join(NUMBER.sub("", out).split()), (out, comment)
