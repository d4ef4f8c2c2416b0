"""A validation split that keeps a row's augmented views on the row's side."""

from __future__ import annotations

import numpy as np


class SplitByRow:
    """skorch ``train_split`` for ``n_rows`` rows followed by their augmented views (view-major:
    position ``i`` is a view of row ``i % n_rows``).

    The rows alone are split as ``skorch.dataset.ValidSplit(fraction)`` splits them (stratified
    when the net passes class labels). A training row brings its views; a validation row is scored
    as it is and its views are left out: a view of a validation photo among the training rows would
    leak it and flatter the validation score.
    """

    def __init__(self, fraction: float, n_rows: int, random_state: int | None):
        self.fraction = fraction
        self.n_rows = n_rows
        self.random_state = random_state

    def __call__(self, dataset, y=None, groups=None):
        from skorch.dataset import ValidSplit, get_len
        from skorch.utils import to_numpy
        from torch.utils.data import Subset

        n_rows, n = self.n_rows, get_len(dataset)
        if n % n_rows:
            raise ValueError(f"SplitByRow: {n} samples are not {n_rows} rows and whole views of them.")
        labels = None if y is None else to_numpy(y)[:n_rows]
        split = ValidSplit(self.fraction, stratified=labels is not None, random_state=self.random_state)
        train, valid = split(Subset(dataset, np.arange(n_rows)), labels)  # the rows alone
        is_train = np.zeros(n_rows, dtype=bool)
        is_train[train.indices] = True
        positions = np.arange(n)
        return Subset(dataset, positions[is_train[positions % n_rows]]), Subset(dataset, valid.indices)
