"""How a fitted estimator is cloned and pickled: around its Accelerator, and onto
another device."""

from __future__ import annotations

import torch

from sktransfer._training.net import fast_path


class ClonePickleMixin:
    """``__sklearn_clone__``, ``__getstate__`` and ``__setstate__`` of the estimators."""

    # An Accelerator is this process's handle on the process group, holding every model
    # it prepared: clones share it (scikit-learn's clone would deep-copy it, and with it
    # those models), and pickles leave it out (accelerator=None once loaded).
    def __sklearn_clone__(self):
        if self.accelerator is None:
            return super().__sklearn_clone__()
        from sklearn.base import clone

        params = {name: clone(value, safe=False) for name, value in self.get_params(deep=False).items()
                  if name != "accelerator"}
        return type(self)(**params, accelerator=self.accelerator)

    def __getstate__(self):
        state = super().__getstate__()
        if state.get("accelerator") is not None:
            state = {**state, "accelerator": None}
        return state

    # skorch's DeviceWarning handles loading a GPU-fitted net on a CPU machine; the
    # fitted device is kept in sync so the estimator's own tensors follow.
    def __setstate__(self, state):
        self.__dict__.update(state)
        if hasattr(self, "net_") and str(self.net_.device) != self.device_:
            # Loaded where the fitting device is missing (a GPU model on a CPU-only
            # machine): skorch mapped the tensors; the fast path follows the new device.
            self.device_ = str(self.net_.device)
            modality = "image" if self.spec_ is None else self.spec_.modality  # fused: as if an image branch
            self.fast_path_ = fast_path(self.device_, "auto", modality)
            self.net_.amp_dtype = self.fast_path_.amp_dtype
            self.net_.grad_scaler = self.fast_path_.grad_scaler
            module = getattr(self.net_.module_, "_orig_mod", self.net_.module_)
            module.channels_last = self.fast_path_.channels_last
            if not module.channels_last:
                module.to(memory_format=torch.contiguous_format)
