"""The package's shape: small files and classes, a short top level, strategies compared
in one place only, and the old module paths that pickles name still importable."""

import ast
import pickle
import re
from pathlib import Path

import sktransfer

PACKAGE = Path(sktransfer.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_no_file_over_500_lines_and_no_class_over_350():
    long_files = {str(p.relative_to(PACKAGE)): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 500}
    long_classes = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 350:
                long_classes[f"{path.relative_to(PACKAGE)}:{node.name}"] = node.end_lineno - node.lineno + 1
    assert long_files == {} and long_classes == {}


def test_at_most_12_modules_flat_at_the_top():
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 12, flat


def test_strategy_names_are_compared_only_in_the_strategy_classes():
    pattern = re.compile(r"(?<!for )\b(strategy|augment)\s*(==|!=|in\s*[(\[{])")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{i}"
        for path in SOURCES if path.name not in ("strategies.py", "augment.py")
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line.split("#")[0])
    ]
    assert offenders == []


def test_old_module_paths_still_resolve_for_pickles():
    from sktransfer._legacy_paths import LEGACY_MODULES

    # Each old path gives the object a pickle of 0.1 names there.
    names = {
        "sktransfer._net": "TransferNet", "sktransfer._module": "TransferModule", "sktransfer._base": "_copy_module",
        "sktransfer._classes": "TransferClassifier", "sktransfer._registry": "BackboneSpec",
        "sktransfer._adapters.tabular": "TabularAdapter", "sktransfer._feature_cache": "MemoryFeatureStore",
        "sktransfer._features": "FeatureAwareCollate", "sktransfer._fusion": "Branch",
    }
    for module, name in names.items():
        loaded = pickle.loads(b"\x80\x04\x95" + len(f"c{module}\n{name}\n.").to_bytes(8, "little")
                              + f"c{module}\n{name}\n.".encode())
        assert loaded.__name__ == name
    assert all(module.startswith("sktransfer._") for module in LEGACY_MODULES)
