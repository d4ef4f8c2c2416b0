"""Fused models' parameters in the scikit-learn protocol: each branch's settings as
``branch__<name>__<param>``, so that a search can tune them."""

from __future__ import annotations

from sktransfer._build.fusion import (
    BRANCH_PARAMS,
    branch_table,
    is_fused,
    with_branch_params,
)


class FusionMixin:
    """``get_params``/``set_params`` that expose each branch's settings as
    ``branch__<name>__<param>``, so that a search can tune them."""

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        if deep and is_fused(self.backbone):
            try:
                table = branch_table(self.backbone)
            except (TypeError, ValueError):
                return params  # fit reports the bad mapping
            for name, _, branch in table:
                for param in BRANCH_PARAMS:
                    params[f"branch__{name}__{param}"] = getattr(branch, param)
        return params

    def set_params(self, **params):
        updates = {key: params.pop(key) for key in list(params) if key.startswith("branch__")}
        if "backbone" in params:
            super().set_params(backbone=params.pop("backbone"))
        if updates:
            if not is_fused(self.backbone):
                raise ValueError(
                    f"Invalid parameters {sorted(updates)}: branch__ parameters need several backbones "
                    "(a list or a column mapping as backbone)."
                )
            self.backbone = with_branch_params(self.backbone, updates)
        return super().set_params(**params)
