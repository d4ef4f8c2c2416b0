"""sktransfer-example: a minimal sktransfer plugin (see ``backbones``)."""

__version__ = "0.1.0"
