"""Tiny user-module backbones shared by several test files."""

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
