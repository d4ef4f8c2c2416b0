"""The user guide's Python snippets run, as written.

Every ``.. code-block:: python`` of docs/ is checked (it compiles, every name it imports
from sktransfer exists, every keyword it passes to an estimator or ``Branch`` is one of
its parameters) and then executed in a temporary directory, each snippet on its own. The
names a reader brings along (``texts``, ``images``, a fitted ``clf``...) hold small real
inputs (tests/_doc_inputs.py), and the services reached over a network are their local
forms: a Hub cache, S3 in memory, an MLflow store in a file. ``max_epochs="auto"`` means
2 epochs here (the snippets train on a dozen rows: it is the calls that are checked, not
an accuracy). A snippet that defines a
``test_*`` function has it called; one that defines ``@sktransfer.hookimpl`` functions is
registered as a plugin and the names it offers are looked up.

A snippet that can't run here is listed in ``NOT_RUN`` with the reason; every other one
runs, a new one included. A failure's traceback points into the ``.rst`` file.
"""

import ast
import builtins
import inspect
import re
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from _doc_inputs import FILES, Inputs, offline_world

import sktransfer

DOCS = Path(__file__).resolve().parents[1] / "docs"
ESTIMATORS = {"TransferClassifier", "TransferRegressor", "TransferEmbedder", "Branch"}

# page.rst:line -> why the snippet is only checked, not run
NOT_RUN = {
    "guide/scaling.rst:41": "a 2-process LocalCluster and 13 EfficientNet-Lite0 fits on all 1,797 digits, half of "
                            "them fine-tuning: it ran and passed in 341 s on 2 shared CPU cores (tests/test_dask.py "
                            "runs this joblib/Dask path on tiny backbones)",
    "guide/scaling.rst:146": "needs dask-cuda and CUDA GPUs (LocalCUDACluster), and the search of the snippet above",
}


@dataclass(frozen=True)
class Snippet:
    path: Path
    directive_line: int  # of ``.. code-block:: python``: the test's id
    line: int  # of the snippet's first line of code
    code: str

    @property
    def page(self):
        return self.path.relative_to(DOCS).as_posix()

    @property
    def id(self):
        return f"{self.page}:{self.directive_line}"


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
                first = next(j for j, text in enumerate(body) if text.strip())
                snippet = Snippet(path, i + 1, i + 2 + first, textwrap.dedent("\n".join(body)).strip("\n"))
                yield pytest.param(snippet, id=snippet.id)


def estimator_parameters(name):
    if name == "Branch":
        return set(inspect.signature(sktransfer.Branch).parameters)
    return set(getattr(sktransfer, name)("mlp").get_params(deep=False))


@pytest.mark.parametrize("snippet", list(snippets()))
def test_guide_snippet(snippet):
    tree = ast.parse(snippet.code)  # a SyntaxError fails the test with the snippet's line
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sktransfer":
            for alias in node.names:
                assert hasattr(sktransfer, alias.name), f"sktransfer has no {alias.name!r}"
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in ESTIMATORS:
                unknown = {k.arg for k in node.keywords if k.arg} - estimator_parameters(name)
                assert not unknown, f"{name} has no parameter(s) {sorted(unknown)}"


def free_names(tree: ast.AST) -> set:
    """Names the snippet reads before it binds them, builtins aside: what the reader brings.
    A function's body runs later: a name read there is free only if the snippet never binds it."""
    reads, binds = {}, {}

    def note(table, name, where):
        table[name] = min(table.get(name, where), where)

    for node in ast.walk(tree):
        where = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        if isinstance(node, ast.Name):
            note(reads if isinstance(node.ctx, ast.Load) else binds, node.id, where)
        elif isinstance(node, ast.arg):
            note(binds, node.arg, (0, 0))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            note(binds, node.name, where)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                note(binds, (alias.asname or alias.name).split(".")[0], where)
    in_functions = {inner.id for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.Lambda))
                    for inner in ast.walk(function) if isinstance(inner, ast.Name)}
    return {name for name, where in reads.items() if name not in dir(builtins)
            and not (name in binds and (name in in_functions or binds[name] < where))}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return Inputs(tmp_path_factory.mktemp("doc-inputs"))


def namespace_for(snippet: Snippet, tree: ast.AST, inputs: Inputs, directory: Path) -> dict:
    names = free_names(tree)
    missing = names - inputs.names(snippet.page)
    assert not missing, f"{snippet.id} uses {sorted(missing)}: define them in the snippet or in tests/_doc_inputs.py"
    strings = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    for name in strings & set(FILES):
        FILES[name](directory / name)
    # run as a script: `if __name__ == "__main__":` blocks run too
    return {"__name__": "__main__", **{name: inputs.get(snippet.page, name) for name in sorted(names)}}


def register_as_plugin(namespace: dict, monkeypatch) -> list:
    """Register the snippet's hook implementations with a fresh plugin manager (entry points
    not loaded, so its names clash with no installed plugin); return the names it added."""
    from sktransfer.plugins import DISABLE_AUTOLOAD_ENV, get_plugin_manager

    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    sktransfer.clear_caches(["plugins", "registry"])
    before = set(sktransfer.list_backbones())
    plugin = types.ModuleType("guide_snippet_plugin")
    plugin.__dict__.update({name: value for name, value in namespace.items() if not name.startswith("__")})
    get_plugin_manager().register(plugin)  # pluggy checks each hook's signature against its spec
    return sorted(set(sktransfer.list_backbones()) - before)


@pytest.mark.parametrize("snippet", list(snippets()))
def test_guide_snippet_runs(snippet, inputs, tmp_path, monkeypatch):
    if snippet.id in NOT_RUN:
        pytest.skip(NOT_RUN[snippet.id])
    tree = ast.parse(snippet.code)
    namespace = namespace_for(snippet, tree, inputs, tmp_path)
    offline_world(monkeypatch, tmp_path)
    ast.increment_lineno(tree, snippet.line - 1)  # tracebacks name the .rst file and its line
    try:
        exec(compile(tree, str(snippet.path), "exec"), namespace)  # noqa: S102  (the guide's own code)
    finally:
        if "accelerate.state" in sys.modules:  # an Accelerator is a process-wide singleton: leave none behind
            sys.modules["accelerate.state"].AcceleratorState._reset_state(reset_partial_state=True)

    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()
    if any(getattr(value, "sktransfer_impl", None) is not None for value in namespace.values()):  # pluggy's mark
        try:
            added = register_as_plugin(namespace, monkeypatch)
            assert added, f"{snippet.id}: its hooks offer no backbone"
            for name in added:
                assert sktransfer.get_spec(name).name == name
        finally:
            monkeypatch.undo()
            sktransfer.clear_caches(["plugins", "registry"])  # the installed plugins again


def test_every_snippet_not_run_exists():
    ids = {param.id for param in snippets()}
    assert set(NOT_RUN) <= ids, f"NOT_RUN names snippets that moved or are gone: {sorted(set(NOT_RUN) - ids)}"


def test_there_are_snippets():
    assert len(list(snippets())) >= 10
