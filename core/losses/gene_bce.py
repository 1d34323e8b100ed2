"""Multi-label binary cross-entropy of the student's driver-gene head on labelled rows."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from core.losses.reduction import weighted_mean


class GeneBCELoss(nn.Module):
    """Binary cross-entropy over the driver genes, averaged over genes, then over labelled rows.

        l_i  = -(1 / G) * sum_g [ y_ig * log sigmoid(s_ig) + (1 - y_ig) * log(1 - sigmoid(s_ig)) ]
        loss = sum_{i labelled} l_i / #labelled

    y_ig = 1 when gene g carries a driver event in the note's case (Case.drivers), s_ig the
    head's logit. Rows without labels (notes in languages outside the run's label languages,
    parallel sentences) contribute nothing, not even to the denominator; a batch without a
    labelled row gives a graph-connected 0. The multi-label form of the standard BCE (one
    independent Bernoulli per gene, as in multi-label text classification, e.g. Nam et al.
    2014); computed from logits (log-sum-exp form) so it is stable for any logit.

    Shapes: logits (B, G) float, targets (B, G) bool or {0, 1} float, labelled (B,) bool
    -> scalar. Targets carry no gradient.
    """

    def forward(self, logits: Tensor, targets: Tensor, labelled: Tensor) -> Tensor:
        if logits.dim() != 2 or targets.shape != logits.shape or labelled.shape != logits.shape[:1]:
            raise ValueError(
                f"expected logits (B, G), targets (B, G) and labelled (B,), got "
                f"{tuple(logits.shape)}, {tuple(targets.shape)}, {tuple(labelled.shape)}"
            )
        per_row = F.binary_cross_entropy_with_logits(
            logits, targets.detach().to(logits.dtype), reduction="none"
        ).mean(-1)  # (B,)
        return weighted_mean(per_row, labelled.to(per_row.dtype))
