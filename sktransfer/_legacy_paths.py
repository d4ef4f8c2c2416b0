"""The private module paths of sktransfer 0.1's flat layout, for pickles that name them.

A pickle stores each object's class as ``module.qualname``; pickles written before the
package was layered name ``sktransfer._module.TransferModule``, ``sktransfer._net.TransferNet``
and so on. Instead of one re-export file per old path at the top of the package, the
old names are served by one import hook: importing ``sktransfer._net`` gives a module
whose attributes are looked up, on first use, in the modules that hold them now. The
hook imports nothing until an old name is imported, so ``import sktransfer`` stays as
light as it was. Never import these names in new code.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

#: Old module -> the modules its names live in now, searched in order.
LEGACY_MODULES: dict[str, tuple[str, ...]] = {
    "sktransfer._registry": ("sktransfer._spec.registry",),
    "sktransfer._stages": ("sktransfer._spec.stages", "sktransfer._nn.pooling", "sktransfer._nn.stage_outputs"),
    "sktransfer._module": ("sktransfer._nn.module",),
    "sktransfer._fusion_module": ("sktransfer._nn.fusion_module",),
    "sktransfer._losses": ("sktransfer._nn.losses",),
    "sktransfer._lora": ("sktransfer._nn.lora",),
    "sktransfer._backbone_cache": ("sktransfer._nn.backbone_cache",),
    "sktransfer._feature_cache": ("sktransfer._features.stores", "sktransfer._hashing"),
    "sktransfer._feature_store": ("sktransfer._features.protocol",),
    "sktransfer._fsspec_store": ("sktransfer._features.fsspec_store",),
    "sktransfer._adapters": ("sktransfer._inputs",),
    "sktransfer._adapters._base": ("sktransfer._inputs.base",),
    "sktransfer._adapters.image": ("sktransfer._inputs.image",),
    "sktransfer._adapters.pixels": ("sktransfer._inputs.pixels",),
    "sktransfer._adapters.tabular": ("sktransfer._inputs.tabular",),
    "sktransfer._adapters.text": ("sktransfer._inputs.text",),
    "sktransfer._adapters.text_augment": ("sktransfer._inputs.text_augment",),
    "sktransfer._fused_input": ("sktransfer._inputs.fused",),
    "sktransfer._scaling": ("sktransfer._inputs.scaling",),
    "sktransfer._preflight": ("sktransfer._training.preflight", "sktransfer._training.devices",
                              "sktransfer._inputs.checks", "sktransfer._estimators.targets"),
    "sktransfer._net": ("sktransfer._training.net",),
    "sktransfer._callbacks": ("sktransfer._training.callbacks",),
    "sktransfer._accelerate": ("sktransfer._training.accelerate",),
    "sktransfer._sources": ("sktransfer._build.sources",),
    "sktransfer._base": ("sktransfer._estimators.base", "sktransfer._build.user_module"),
    "sktransfer._classes": ("sktransfer._estimators.classes",),
    "sktransfer._embedder": ("sktransfer._estimators.embedder",),
    "sktransfer._fusion": ("sktransfer._build.fusion", "sktransfer._estimators.fusion"),
    "sktransfer._model_files": ("sktransfer._persistence.model_files",),
}


class _LegacyModule(types.ModuleType):
    """An old path: attributes come from the modules that hold them now."""

    def __getattr__(self, name: str):
        for target in LEGACY_MODULES[self.__name__]:
            try:
                module = importlib.import_module(target)
            except ModuleNotFoundError:
                continue
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} (an old sktransfer path) has no attribute {name!r}")


class _LegacyFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in LEGACY_MODULES:
            is_package = any(other.startswith(fullname + ".") for other in LEGACY_MODULES)
            return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)
        return None

    def create_module(self, spec):
        module = _LegacyModule(spec.name)
        if spec.submodule_search_locations is not None:
            module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def install() -> None:
    """Serve the old paths (idempotent)."""
    if not any(isinstance(finder, _LegacyFinder) for finder in sys.meta_path):
        sys.meta_path.append(_LegacyFinder())
