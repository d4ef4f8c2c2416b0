"""The user guide's Python snippets stay in step with the library.

The runnable code of the documentation lives in the executed gallery
(docs/examples/plot_*.py). The guide's other snippets need a cluster, a GPU, the Hub or
data the reader has, so they are not run; this test parses every ``.. code-block::
python`` of docs/ and checks what can be checked without running them: they compile,
every name they import from sktransfer exists, and every keyword they pass to an
estimator (or ``Branch``) is one of its parameters.
"""

import ast
import re
import textwrap
from pathlib import Path

import pytest

import sktransfer

DOCS = Path(__file__).resolve().parents[1] / "docs"
ESTIMATORS = {"TransferClassifier", "TransferRegressor", "TransferEmbedder", "Branch"}


def snippets():
    for path in sorted(DOCS.rglob("*.rst")):
        if "_build" in path.parts or "generated" in path.parts or "auto_examples" in path.parts:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if re.match(r"\s*\.\. code-block:: python\s*$", line):
                indent = len(line) - len(line.lstrip())
                body = []
                for following in lines[i + 1:]:
                    if following.strip() and len(following) - len(following.lstrip()) <= indent:
                        break
                    body.append(following)
                yield pytest.param(textwrap.dedent("\n".join(body)).strip("\n"), id=f"{path.relative_to(DOCS)}:{i + 1}")


def estimator_parameters(name):
    if name == "Branch":
        import inspect

        return set(inspect.signature(sktransfer.Branch).parameters)
    return set(getattr(sktransfer, name)("mlp").get_params(deep=False))


@pytest.mark.parametrize("code", list(snippets()))
def test_guide_snippet(code):
    tree = ast.parse(code)  # a SyntaxError fails the test with the snippet's line
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sktransfer":
            for alias in node.names:
                assert hasattr(sktransfer, alias.name), f"sktransfer has no {alias.name!r}"
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in ESTIMATORS:
                unknown = {k.arg for k in node.keywords if k.arg} - estimator_parameters(name)
                assert not unknown, f"{name} has no parameter(s) {sorted(unknown)}"


def test_there_are_snippets():
    assert len(list(snippets())) >= 10
