"""Hard negatives from staff review: push a query away from a match staff judged wrong."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ConfigError
from core.losses.reduction import weighted_mean


class HardNegativeLoss(nn.Module):
    """Margin loss of the student's embedding q of a search query against the teacher's
    embedding n of a case (in the modality shown) that a reviewer judged not relevant or of
    the wrong modality for that query, and, where a reviewer judged another case relevant to
    the same query in the same modality, the teacher's embedding p of that case:

        with a positive:    l_i = max(0, m + cos(q_i, n_i) - cos(q_i, p_i))   (triplet margin)
        without one:        l_i = max(0, cos(q_i, n_i) - m)                   (similarity cap)
        loss = mean_i l_i

    With a positive, the rejected case must sit at least m further from the query than the
    accepted one; without one, the query's similarity to the rejected case is capped at m.
    Triplet loss as in Schroff, Kalenichenko & Philbin 2015 (FaceNet), on cosines as in
    sentence-transformers' TripletLoss; the student never sees n or p, so InfoNCE's in-batch
    negatives cannot carry this signal.

    Shapes: query (B, D) (any norm), negative (B, D), positive (B, D) or None, has_positive
    (B,) bool or None (None with a positive: every row has one) -> scalar. Negatives and
    positives are targets from the frozen teacher: no gradient flows into them. An empty
    batch gives a graph-connected 0.
    """

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= margin <= 1.0:
            raise ConfigError(f"hard-negative margin must be in [0, 1], got {margin}")
        self.margin = margin

    def per_sample(
        self,
        query: Tensor,
        negative: Tensor,
        positive: Tensor | None = None,
        has_positive: Tensor | None = None,
    ) -> Tensor:
        """The unreduced loss l_i, shape (B,)."""
        if query.dim() != 2 or query.shape != negative.shape:
            raise ValueError(
                "expected (B, D) query and negative embeddings of one shape, got "
                f"{tuple(query.shape)}, {tuple(negative.shape)}"
            )
        q = F.normalize(query, dim=-1)  # (B, D)
        neg = (q * F.normalize(negative.detach(), dim=-1)).sum(-1)  # (B,) cos(q, n)
        capped = (neg - self.margin).clamp_min(0.0)  # (B,)
        if positive is None:
            return capped
        if positive.shape != query.shape:
            raise ValueError(
                f"positive {tuple(positive.shape)} does not match query {tuple(query.shape)}"
            )
        pos = (q * F.normalize(positive.detach(), dim=-1)).sum(-1)  # (B,) cos(q, p)
        triplet = (self.margin + neg - pos).clamp_min(0.0)  # (B,)
        if has_positive is None:
            return triplet
        return torch.where(has_positive.to(torch.bool), triplet, capped)

    def forward(
        self,
        query: Tensor,
        negative: Tensor,
        positive: Tensor | None = None,
        has_positive: Tensor | None = None,
    ) -> Tensor:
        return weighted_mean(self.per_sample(query, negative, positive, has_positive))
