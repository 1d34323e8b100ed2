"""Reductions shared by the distillation losses: per-sample weighted means that stay in the graph.

Every loss in this package computes one value per sample and reduces it here, so that
uncertainty weights (and "nothing to learn from in this batch") behave the same everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor


def zero_loss(like: Tensor) -> Tensor:
    """A scalar 0 connected to `like`'s graph, so `backward()` still works on it."""
    return like.sum() * 0.0


def mean_or_zero(losses: list[Tensor], like: Tensor) -> Tensor:
    """Mean of scalar `losses`, or a graph-connected 0 (from `like`) when there are none."""
    return torch.stack(losses).mean() if losses else zero_loss(like)


def weighted_mean(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """sum_i w_i * v_i / sum_i w_i over a batch; plain mean when `weights` is None.

    values: (B,) per-sample losses; weights: (B,) non-negative, not differentiated.
    All-zero weights (every sample skipped) give 0 connected to the graph instead of 0/0.
    """
    if values.dim() != 1:
        raise ValueError(f"per-sample values must be (B,), got {tuple(values.shape)}")
    if weights is None:
        return values.mean() if values.numel() else zero_loss(values)
    if weights.shape != values.shape:
        raise ValueError(
            f"weights {tuple(weights.shape)} do not match per-sample values {tuple(values.shape)}"
        )
    weights = weights.detach().to(values.dtype)
    if bool((weights < 0).any()):
        raise ValueError("sample weights must be non-negative")
    total = weights.sum()  # ()
    # Divide by 1 rather than 0 when every weight is 0: the numerator is then exactly 0, and a
    # torch.where over num / total would still send NaN gradients through the unused branch.
    denom = torch.where(total > 0, total, torch.ones_like(total))
    return (weights * values).sum() / denom
