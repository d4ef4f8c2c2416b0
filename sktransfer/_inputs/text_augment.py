"""Light, offline text augmentations: random word deletion (EDA's "random deletion")
and random span deletion.

They draw from torch's random generator, which the estimator seeds per fit (and
DataLoader seeds per worker), so a seeded fit sees the same augmented texts every
time. Words are whitespace-separated tokens; the text is rejoined with single spaces.
"""

from __future__ import annotations

import torch


class WordDropout:
    """Delete each word with probability ``p``, keeping at least one."""

    def __init__(self, p: float = 0.1):
        self.p = p

    def __call__(self, text: str) -> str:
        words = text.split()
        if len(words) < 2:
            return text
        keep = torch.rand(len(words)) >= self.p
        if not keep.any():
            keep[torch.randint(len(words), (1,))] = True
        return " ".join(word for word, kept in zip(words, keep.tolist()) if kept)

    def __repr__(self):
        return f"WordDropout(p={self.p})"


class SpanDeletion:
    """Delete one contiguous span of 1 to ``max_fraction`` of the words (at least one word stays)."""

    def __init__(self, max_fraction: float = 0.2):
        self.max_fraction = max_fraction

    def __call__(self, text: str) -> str:
        words = text.split()
        longest = min(len(words) - 1, int(len(words) * self.max_fraction))
        if longest < 1:
            return text
        length = int(torch.randint(1, longest + 1, (1,)))
        start = int(torch.randint(0, len(words) - length + 1, (1,)))
        return " ".join(words[:start] + words[start + length :])

    def __repr__(self):
        return f"SpanDeletion(max_fraction={self.max_fraction})"


#: ``augment=`` names for text backbones; "default" is word dropout.
TEXT_AUGMENTS = {
    "default": WordDropout(0.1),
    "word_dropout": WordDropout(0.1),
    "span_deletion": SpanDeletion(0.2),
}


class CheckedTextAugment:
    """A user's text augmentation, checked to return a str for each text."""

    def __init__(self, function):
        self.function = function

    def __call__(self, text: str) -> str:
        out = self.function(text)
        if not isinstance(out, str):
            raise TypeError(
                f"augment={getattr(self.function, '__name__', self.function)!r} returned a "
                f"{type(out).__name__} for a text; a text augmentation must return a str."
            )
        return out


def text_augmentation(augment):
    """The per-text training transform for ``augment=`` (None: none)."""
    if augment is None:
        return None
    if isinstance(augment, str):
        return TEXT_AUGMENTS[augment]
    return CheckedTextAugment(augment)
