"""What ``sktransfer.load`` hands the build path for each branch: the saved widths, the
weights to check and the tensors to load, each failure a ModelFileError naming the file."""

from __future__ import annotations

import warnings
from pathlib import Path

from sktransfer._nn.lora import is_lora_name
from sktransfer._persistence.checks import check_dtypes
from sktransfer._persistence.records import distribution_version
from sktransfer._spec.registry import get_spec
from sktransfer.exceptions import ModelFileError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
#: The model directory of a model's ``init=`` model, inside the model's.
INIT = "init"


def resolve_spec(saved: dict, config_path: Path):
    """The spec of the saved backbone record ``saved``, from this machine's registry."""
    try:
        spec = get_spec(saved["name"])
    except ValueError as exc:
        raise ModelFileError(
            f"{config_path} needs the backbone {saved['name']!r} from plugin {saved.get('plugin') or '?'} "
            f"(distribution {saved.get('distribution') or '?'} {saved.get('distribution_version') or ''}), which "
            f"is not available here: {exc} Install that plugin to load this model."
        ) from None
    if spec.modality != saved["modality"]:
        raise ModelFileError(
            f"{config_path}: backbone {spec.name!r} takes {spec.modality} here, but the model was saved with a "
            f"{saved['modality']} backbone of that name (plugin {saved.get('plugin')})."
        )
    now = distribution_version(spec.distribution)
    if spec.plugin != saved.get("plugin") or spec.distribution != saved.get("distribution") or \
            now != saved.get("distribution_version"):
        warnings.warn(
            f"{config_path} was saved with backbone {spec.name!r} from plugin {saved.get('plugin')!r} "
            f"(distribution {saved.get('distribution')} {saved.get('distribution_version')}); here it comes from "
            f"plugin {spec.plugin!r} (distribution {spec.distribution} {now}). Predictions may differ if the plugin "
            "changed how it builds or feeds the backbone; if the config's plugin fields were edited, save the model "
            "again.",
            UserWarning,
            stacklevel=5,
        )
    return spec


def load_tensors(module, tensors: dict, skipped: tuple, path: Path, allowed_missing: tuple = ()) -> None:
    """Load ``tensors`` into ``module``: every tensor of it but those under ``skipped``
    (frozen pretrained backbones, rebuilt from the registry) and ``allowed_missing``
    (loaded already), and nothing else."""

    def referenced(name: str) -> bool:  # a pretrained weight rebuilt from the registry, not in the file
        return bool(skipped) and name.startswith(skipped) and not is_lora_name(name)

    try:
        # Checked before loading: a frozen pretrained backbone is shared with other fits.
        stray = sorted(name for name in tensors if referenced(name))
        if stray:
            raise ValueError(f"tensors {stray[:3]} of a backbone that the config says is not stored")
        check_dtypes(module.state_dict(), tensors, path / WEIGHTS, path / CONFIG)
        missing, unexpected = module.load_state_dict(tensors, strict=False)
        missing = [name for name in missing if not referenced(name) and not name.startswith(allowed_missing)]
        if missing or unexpected:
            raise ValueError(f"missing tensors {missing[:3]}, unexpected tensors {unexpected[:3]}")
    except ModelFileError:
        raise
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{path / WEIGHTS} does not fit the model in {path / CONFIG}: {exc}") from None


class SavedBranch:
    """One branch of a model file, as the build path asks for it (``build_branch(saved=...)``)."""

    def __init__(self, record: dict, tensors: dict, path: Path, widths: list[int] | None = None):
        self.record = record
        self.backbone = record["backbone"]
        self.tensors = tensors
        self.path = path
        self.widths = [int(self.backbone["feature_dim"])] if widths is None else [int(w) for w in widths]

    @property
    def stores_weights(self) -> bool:
        return bool(self.backbone["stores_weights"])

    def check_weights(self, weights: bytes | None) -> None:
        expected = (self.backbone.get("pretrained_weights") or {}).get("fingerprint")
        if weights is None or weights.hex() != expected:
            raise ModelFileError(
                f"{self.path / CONFIG} was saved on the pretrained weights of {self.backbone['name']!r} with "
                f"fingerprint {expected}, but the weights on this machine hash to "
                f"{None if weights is None else weights.hex()}: they changed since. Restore the original weights, "
                "or refit the model."
            )

    def check_stages(self, stages) -> list[int]:
        """The saved feature widths, once the stages the parameters give are the saved ones."""
        if (None if stages is None else list(stages)) != self.record["layers"]:
            raise ModelFileError(
                f"{self.path / CONFIG}: the backbone's stages {stages} differ from the saved {self.record['layers']}."
            )
        return self.widths

    def load_into(self, module) -> None:
        load_tensors(module, self.tensors, () if self.stores_weights else ("backbone.",), self.path)


class SavedModel:
    """A classifier's or regressor's saved parts: its branches, and a fused model's head."""

    def __init__(self, branches: list[SavedBranch], fusion_tensors: dict, path: Path):
        self.branches = branches
        self.fusion_tensors = fusion_tensors
        self.path = path

    def load_fusion(self, module) -> None:
        load_tensors(module, self.fusion_tensors, (), self.path, allowed_missing=("branches.",))
