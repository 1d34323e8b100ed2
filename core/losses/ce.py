"""Cross-entropy on the cases whose label is known."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ConfigError
from core.losses.reduction import weighted_mean


class LabelCrossEntropy(nn.Module):
    """Cross-entropy over labelled rows, with optional label smoothing and sample weights.

        l_i = -sum_c q_ic * log softmax(z_i)_c,  q_i = (1 - eps) * onehot(y_i) + eps / C
        loss = sum_{i labelled} w_i * l_i / sum_{i labelled} w_i

    Rows whose label equals `ignore_index` (unlabelled cases) contribute nothing, not even to
    the denominator; a batch with no labelled row gives a graph-connected 0. Label smoothing
    as in Szegedy et al. 2016 (torch's `label_smoothing`).

    Shapes: logits (B, C) float, labels (B,) long (class index or `ignore_index`), weights (B,)
    or None -> scalar.
    """

    def __init__(self, ignore_index: int = -100, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, labels: Tensor, weights: Tensor | None = None) -> Tensor:
        if logits.dim() != 2 or labels.shape != logits.shape[:1]:
            raise ValueError(
                f"expected logits (B, C) and labels (B,), got {tuple(logits.shape)}, "
                f"{tuple(labels.shape)}"
            )
        labelled = labels != self.ignore_index  # (B,)
        loss = F.cross_entropy(
            logits,
            labels,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction="none",
        )  # (B,), 0 on unlabelled rows
        weights = labelled.to(loss.dtype) if weights is None else weights * labelled
        return weighted_mean(loss, weights)
