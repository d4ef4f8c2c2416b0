"""Tiny user-module backbones, and the noise images they learn from, shared by several test files."""

import numpy as np
import torch
import torch.nn as nn


class CountingCNN(nn.Module):
    """A tiny image backbone that counts the rows it sees (class-wide, across copies)."""

    rows_seen = 0

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        type(self).rows_seen += x.shape[0]
        return self.pool(torch.relu(self.conv(x))).flatten(1)


class Tiny(nn.Module):
    """A one-layer module for 5 numeric features: a backbone model files can't rebuild."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 4)

    def forward(self, x):
        return self.linear(x)


def brightness_images(n: int):
    """``n`` random 12x12 RGB uint8 images (seed 0); the label says whether the top half is brighter."""
    rng = np.random.RandomState(0)
    X = rng.randint(0, 255, size=(n, 12, 12, 3)).astype(np.uint8)
    y = (X[:, :6].mean(axis=(1, 2, 3)) > X[:, 6:].mean(axis=(1, 2, 3))).astype(int)
    return X, y
