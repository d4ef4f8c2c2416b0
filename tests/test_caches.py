"""sktransfer.clear_caches: every process-wide cache registered in one place, cleared by name."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sktransfer
from sktransfer import _caches, clear_caches
from sktransfer._caches import list_caches, register


@pytest.fixture
def scratch_cache():
    """A cache of the test's own, registered for the test only."""
    store = {"a": 1}
    register("scratch", store.clear, lambda: f"{len(store)} entries")
    yield store
    with _caches._lock:
        _caches._caches.pop("scratch", None)


def test_the_module_is_a_leaf():
    tree = ast.parse(Path(_caches.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "sktransfer"]


def test_public():
    assert sktransfer.clear_caches is clear_caches and "clear_caches" in sktransfer.__all__


def test_the_process_wide_caches_register_themselves():
    # import sktransfer is lazy: the modules that hold the caches load when a name needs them.
    sktransfer.TransferClassifier  # noqa: B018
    assert set(_caches.PACKAGE_CACHES) <= set(list_caches())
    assert all(isinstance(text, str) and text for text in list_caches().values())


def test_package_caches_clear_by_name_before_their_modules_load():
    code = ("import sys, sktransfer\n"
            "print(sktransfer.clear_caches(['features', 'backbones']), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=Path(sktransfer.__file__).parents[1]).stdout
    assert out.split() == ["['features',", "'backbones']", "False"]


def test_register_list_and_clear_by_name(scratch_cache):
    assert list_caches()["scratch"] == "1 entries"
    assert clear_caches("scratch") == ["scratch"]
    assert scratch_cache == {} and list_caches()["scratch"] == "0 entries"
    scratch_cache["b"] = 2
    assert "scratch" in clear_caches()
    assert scratch_cache == {}


def test_unknown_names_and_bad_registrations(scratch_cache):
    scratch_cache["c"] = 3
    with pytest.raises(ValueError, match=r"Unknown cache\(s\) \['nope'\].*'scratch'"):
        clear_caches(["scratch", "nope"])
    assert scratch_cache == {"a": 1, "c": 3}  # nothing is cleared when a name is wrong
    with pytest.raises(TypeError, match="clear_fn"):
        register("bad", None, "x")
    with pytest.raises(TypeError, match="describe"):
        register("bad", dict().clear, 3)
    with pytest.raises(ValueError, match="non-empty str"):
        register("", dict().clear, "x")


def test_clearing_empties_each_cache():
    from sktransfer._features.stores import memory_store
    from sktransfer._nn import backbone_cache
    from sktransfer._spec import registry
    from sktransfer.plugins import get_plugin_manager

    memory_store().put_many({b"k" * 16: np.zeros(3, dtype=np.float32)})
    backbone_cache._kept("test-key", lambda: ("module", None))
    sktransfer.get_spec("resnet18")
    pm = get_plugin_manager()
    assert len(memory_store()) and "test-key" in backbone_cache._built and registry._cache["specs"]

    assert sorted(clear_caches(["features", "backbones", "registry", "plugins"])) == [
        "backbones", "features", "plugins", "registry"]
    assert len(memory_store()) == 0 and memory_store().nbytes == 0
    assert "test-key" not in backbone_cache._built
    assert registry._cache["specs"] is None
    assert get_plugin_manager() is not pm
    assert sktransfer.get_spec("resnet18").name == "resnet18"  # rebuilt on next use


def test_stores_adopted_from_pickles_are_emptied_and_forgotten():
    import pickle

    from sktransfer._features import stores
    from sktransfer._features.stores import MemoryFeatureStore

    mine = MemoryFeatureStore()
    data = pickle.dumps(mine)
    token = mine._token
    del mine  # as in a worker process: the original is not here
    adopted = pickle.loads(data)
    assert stores._ADOPTED_MEMORY_STORES[token] is adopted
    adopted.put_many({b"k" * 16: np.zeros(3, dtype=np.float32)})
    clear_caches("features")
    assert token not in stores._ADOPTED_MEMORY_STORES and len(adopted) == 0
    assert pickle.loads(data) is adopted  # still the store of its identity while it lives


def test_every_cache_the_package_registers_is_known_before_it_loads():
    import re

    package = Path(sktransfer.__file__).parent
    registered = {name for path in package.rglob("*.py")
                  for name in re.findall(r'_caches\.register\(\s*"(\w+)"', path.read_text())}
    assert registered == set(_caches.PACKAGE_CACHES)
