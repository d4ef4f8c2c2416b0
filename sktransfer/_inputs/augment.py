"""The named augmentations, defined once: which modality takes each, and which mix batches."""

from __future__ import annotations

#: Image augmentations: ``"default"`` (RandomResizedCrop, flips, TrivialAugmentWide), and
#: the default plus batch-level MixUp or CutMix.
IMAGE_AUGMENTS = ("default", "mixup", "cutmix")
#: The image augmentations that mix whole batches (samples and their labels), with the
#: torchvision.transforms.v2 class that does it.
BATCH_MIXES = {"mixup": "MixUp", "cutmix": "CutMix"}
#: Text augmentations (``"default"`` is word dropout).
TEXT_AUGMENTS = ("default", "word_dropout", "span_deletion")
#: Every name ``augment=`` accepts.
AUGMENT_NAMES = tuple(sorted(set(IMAGE_AUGMENTS) | set(TEXT_AUGMENTS)))


def mixes_batches(augment) -> bool:
    """Whether ``augment`` mixes samples across a batch (MixUp, CutMix)."""
    return isinstance(augment, str) and augment in BATCH_MIXES


def modality_default(augment, modality: str):
    """A fused model's ``augment`` as one branch sees it: named augmentations are the
    image branches' setting; a callable applies wherever it was given."""
    return None if modality != "image" and isinstance(augment, str) else augment
