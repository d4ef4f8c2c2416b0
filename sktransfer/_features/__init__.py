"""Frozen-backbone features: extraction, content-keyed stores, and the store protocol."""


def __getattr__(name):
    # Pickles written before the layered package name sktransfer._features.<X>, then a
    # module of its own (FeatureAwareCollate, FeatureDataset...): served from where they live now.
    from sktransfer._features import extraction
    from sktransfer._nn import calls

    for module in (extraction, calls):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'sktransfer._features' has no attribute {name!r}")
