"""Classifier heads on the pooled embedding."""

from __future__ import annotations

from torch import nn


def build_head(kind: str, dim: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
    if kind == "mlp":
        return nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
    raise ValueError(f"unknown head {kind!r}")  # unreachable: the config validates it
