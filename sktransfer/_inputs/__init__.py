"""Input adapters, one class per modality, looked up once from the backbone's spec."""

from sktransfer._inputs.base import InputAdapter, SampleDataset
from sktransfer._inputs.image import BatchMix, ImageAdapter, ImageSource
from sktransfer._inputs.tabular import TabularAdapter, looks_tabular
from sktransfer._inputs.text import TextAdapter

ADAPTERS: dict[str, type[InputAdapter]] = {
    cls.modality: cls for cls in (ImageAdapter, TextAdapter, TabularAdapter)
}


def adapter_class(modality: str) -> type[InputAdapter]:
    """The adapter class that feeds backbones of ``modality``."""
    try:
        return ADAPTERS[modality]
    except KeyError:
        raise ValueError(f"No input adapter for modality {modality!r}; known: {', '.join(ADAPTERS)}.") from None


def make_adapter(spec, **params) -> InputAdapter:
    """The adapter for ``spec`` under estimator parameters such as ``image_size`` (benchmarks, tools)."""
    return adapter_class(spec.modality).from_params(spec, params)


def guess_modality(X) -> str:
    """The modality of a user module's input, read off ``X``: a 2-D matrix is tabular, else images."""
    return TabularAdapter.modality if looks_tabular(X) else ImageAdapter.modality


__all__ = [
    "ADAPTERS",
    "BatchMix",
    "ImageAdapter",
    "ImageSource",
    "InputAdapter",
    "SampleDataset",
    "TabularAdapter",
    "TextAdapter",
    "adapter_class",
    "guess_modality",
    "make_adapter",
]
