"""``import sktransfer`` and ``sktransfer --help`` import no torch, and still work where
torch cannot be imported at all; the public names load on first use."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sktransfer

# The children import the sktransfer this process imported (python -c puts the working directory first).
ROOT = Path(sktransfer.__file__).parents[1]
HEAVY = ("torch", "skorch", "transformers", "sklearn", "scipy", "pandas")

# Run first in each child: a meta-path finder that makes `import torch` (and its
# submodules) raise ImportError, as on a machine without torch.
NO_TORCH = textwrap.dedent(
    """
    import sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoTorch())
    """
)


def run_python(code: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def loaded_after(code: str) -> set[str]:
    """The heavy modules in ``sys.modules`` after ``code`` ran with torch blocked."""
    script = NO_TORCH + code + f"\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    return set(eval(run_python(script).stdout.strip().splitlines()[-1]))


def test_import_sktransfer_without_torch_imports_nothing_heavy():
    assert loaded_after("import sktransfer\nprint(sktransfer.__version__)") == set()


def test_a_name_that_needs_torch_says_so_when_torch_is_missing():
    code = NO_TORCH + textwrap.dedent(
        """
        import sktransfer
        try:
            sktransfer.TransferClassifier
        except ImportError as exc:
            print("ImportError", exc)
        """
    )
    assert "ImportError" in run_python(code).stdout


@pytest.mark.parametrize("command", [[], ["backbones"], ["demo"], ["fit"], ["predict"], ["evaluate"]])
def test_help_without_torch(command):
    code = textwrap.dedent(
        f"""
        import runpy
        sys.argv = ["sktransfer", *{command!r}, "--help"]
        try:
            runpy.run_module("sktransfer", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        """
    )
    script = NO_TORCH + code + f"\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    lines = run_python(script).stdout.strip().splitlines()
    assert lines[0].startswith("usage: sktransfer")
    assert eval(lines[-1]) == []


def test_public_names_load_on_first_use_in_a_fresh_process():
    code = textwrap.dedent(
        """
        import sys
        import sktransfer
        assert "torch" not in sys.modules
        from sktransfer import TransferClassifier, TransferEmbedder, load, get_spec, hookimpl
        assert "torch" in sys.modules
        assert TransferClassifier is sktransfer.TransferClassifier
        assert TransferClassifier.__module__ == "sktransfer._estimators.classes"
        print(sorted(name for name in sktransfer.__all__ if getattr(sktransfer, name) is None))
        """
    )
    assert run_python(code).stdout.strip() == "[]"


def test_dir_lists_every_public_name_and_submodule():
    listed = dir(sktransfer)
    assert sorted(sktransfer.__all__) == sorted(sktransfer._LAZY_NAMES)
    assert set(sktransfer.__all__) <= set(listed)
    assert {"report", "testing", "exceptions", "plugins", "__version__"} <= set(listed)
    assert "TransferClassifier" in sktransfer.__all__ and "hookimpl" in sktransfer.__all__


def test_every_public_name_resolves_and_unknown_names_raise():
    for name in sktransfer.__all__:
        assert getattr(sktransfer, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'NotAName'"):
        sktransfer.NotAName  # noqa: B018
    assert sktransfer.report.html_report is not None  # public submodules after a bare import


def test_old_module_paths_work_in_a_fresh_process():
    # An old pickle's first import may be an old path, before any public name was used.
    code = "import pickle, sktransfer._classes as old\nprint(old.TransferClassifier.__name__)"
    assert run_python(code).stdout.strip() == "TransferClassifier"
