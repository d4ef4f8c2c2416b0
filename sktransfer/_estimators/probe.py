"""The linear probe before fine-tuning (LP-FT): ``head_epochs``' head on frozen features."""

from __future__ import annotations

from sktransfer._build.branch import is_pretrained
from sktransfer._build.model import PreparedBranch
from sktransfer._build.param_checks import plain_numbers
from sktransfer._training.budget import planned_head_epochs


def probe_head(estimator, X, y, sample_weight, prepared: PreparedBranch) -> dict | None:
    """The head after ``head_epochs`` of training on frozen features, or None.

    Linear probing, then fine-tuning (LP-FT, as fastai's ``fine_tune``): a random
    head's first gradients reach the backbone as noise and wear down features that
    already fit the task. The probe is this estimator with ``strategy="head"``: its
    features come from the shared cache, with the validation split and early stopping.
    """
    settings = prepared.settings
    params = plain_numbers(estimator.get_params(deep=False))
    # A registry backbone without weights (mlp), or pretrained=False, has random features: none to protect.
    # A user's module is taken to be pretrained: that is why it is passed.
    random_body = isinstance(estimator.backbone, str) and not is_pretrained(settings, prepared.spec, prepared.source)
    head_epochs = planned_head_epochs(params, settings.strategy.warm_starts_head, pretrained=not random_body)
    if head_epochs == 0 or not settings.strategy.warm_starts_head:
        return None
    probe = type(estimator)(**estimator.get_params(deep=False))
    probe.set_params(strategy="head", augment=None, head_epochs=0, max_epochs=head_epochs, verbose=0,
                     net_params=None, compile=False)
    probe.fit(X, y, sample_weight)
    return {name: t.detach().to("cpu", copy=True) for name, t in probe.net_.module_.head.state_dict().items()}
