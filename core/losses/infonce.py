"""Symmetric InfoNCE (CLIP) loss between two batches of paired embeddings.

Used by the teacher to align every pair of its modalities and by distillation to pull a
student's note embedding onto the teacher's embedding of the same case.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ConfigError
from core.losses.reduction import mean_or_zero, weighted_mean


class InfoNCELoss(nn.Module):
    """InfoNCE with in-batch negatives, optionally symmetric (CLIP).

    With a_i, b_i L2-normalised and logits s_ij = <a_i, b_j> / tau:

        l_i(a->b) = -log( exp(s_ii) / sum_j exp(s_ij) )
        l_i(b->a) = -log( exp(s_ii) / sum_j exp(s_ji) )
        loss = sum_i w_i * (l_i(a->b) + l_i(b->a)) / 2 / sum_i w_i

    (only the a->b term when `symmetric=False`; w_i = 1 without weights).
    References: Oord, Li & Vinyals 2018 (CPC, InfoNCE); Radford et al. 2021 (CLIP).

    Shapes: a (B, D), b (B, D), weights (B,) or None -> scalar. Row i of `a` and row i of `b`
    are the positive pair; every other row of the batch is a negative. A weight only scales
    sample i's own terms: a down-weighted sample still serves as a negative for the others.
    """

    def __init__(self, temperature: float = 0.07, symmetric: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"InfoNCE temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.symmetric = symmetric

    def per_sample(self, a: Tensor, b: Tensor) -> Tensor:
        """The unreduced loss l_i, shape (B,)."""
        if a.dim() != 2 or a.shape != b.shape:
            raise ValueError(f"expected two (B, D) batches, got {tuple(a.shape)}, {tuple(b.shape)}")
        a = F.normalize(a, dim=-1)  # (B, D)
        b = F.normalize(b, dim=-1)  # (B, D)
        logits = a @ b.T / self.temperature  # (B, B)
        targets = torch.arange(logits.shape[0], device=logits.device)  # (B,)
        loss = F.cross_entropy(logits, targets, reduction="none")  # (B,)
        if self.symmetric:
            loss = (loss + F.cross_entropy(logits.T, targets, reduction="none")) / 2
        return loss

    def forward(self, a: Tensor, b: Tensor, weights: Tensor | None = None) -> Tensor:
        return weighted_mean(self.per_sample(a, b), weights)


def masked_infonce(
    criterion: InfoNCELoss,
    a: Tensor,
    b: Tensor,
    mask: Tensor | None = None,
    weights: Tensor | None = None,
) -> Tensor | None:
    """`criterion` over the rows where `mask` (B,) bool is true; None when under 2 rows remain.

    With fewer than two rows there are no negatives, so InfoNCE says nothing; callers leave
    such a pair out of their average instead of counting it as a perfect 0.
    """
    if mask is not None:
        if mask.dtype != torch.bool or mask.shape != a.shape[:1]:
            raise ValueError(f"mask must be (B,) bool, got {mask.dtype} {tuple(mask.shape)}")
        a, b = a[mask], b[mask]  # (B', D)
        weights = None if weights is None else weights[mask]  # (B',)
    if a.shape[0] < 2:
        return None
    return criterion(a, b, weights)


def pairwise_infonce(
    embeddings: dict[str, Tensor],
    present: dict[str, Tensor] | None = None,
    criterion: InfoNCELoss | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    """Mean InfoNCE over every pair of modalities, each on the rows where both are present.

    embeddings: modality -> (B, D), all over the same B cases; present: modality -> (B,) bool,
    a modality missing from `present` counts as present in every row (a missing modality's
    row in `embeddings` may hold anything, e.g. zeros). Pairs with fewer than two shared rows
    are skipped; with none left the result is a graph-connected 0. Pairs are taken in dict
    order, which only matters for a non-symmetric `criterion` (default: InfoNCELoss()).
    """
    if len(embeddings) < 2:
        raise ValueError(f"pairwise InfoNCE needs at least two modalities, got {list(embeddings)}")
    criterion = criterion if criterion is not None else InfoNCELoss()
    present = present or {}
    losses = []
    for m1, m2 in itertools.combinations(embeddings, 2):
        mask = _both_present(present.get(m1), present.get(m2))
        loss = masked_infonce(criterion, embeddings[m1], embeddings[m2], mask, weights)
        if loss is not None:
            losses.append(loss)
    return mean_or_zero(losses, next(iter(embeddings.values())))


def _both_present(p1: Tensor | None, p2: Tensor | None) -> Tensor | None:
    """Row mask (B,) where both masks hold; None stands for "all rows"."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    return p1 & p2
