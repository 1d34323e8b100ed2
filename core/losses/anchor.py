"""Anchor alignment: tie a student's note embedding to the teacher's other modalities."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.losses.infonce import InfoNCELoss, masked_infonce
from core.losses.reduction import zero_loss


class AnchorAlignmentLoss(nn.Module):
    """InfoNCE of student embeddings against the teacher's embeddings of modalities it never sees.

    The student reads only a note (pt, es, sw, hi, de or fr); the teacher has embedded the same
    case's slide and genomic profile into the shared space. Each such embedding is an anchor:

        loss = mean over anchor modalities m with >= 2 present rows of
               InfoNCE(student[rows_m], anchors[m][rows_m], weights[rows_m])

    so a Swahili note lands near its own case's slide and variants, not only near the English
    note (anchor-based alignment of the source article; InfoNCE as in CLIP, Radford et al. 2021).
    Anchors are targets: pass them detached (the teacher is frozen during distillation).

    Shapes: student (B, D); anchors: modality -> (B, D); present: modality -> (B,) bool (a
    modality missing from `present` counts as present everywhere); weights (B,) or None
    -> scalar. With no usable anchor the result is a graph-connected 0; `forward_or_none`
    tells that case apart.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.infonce = InfoNCELoss(temperature=temperature, symmetric=True)

    def forward_or_none(
        self,
        student: Tensor,
        anchors: dict[str, Tensor],
        present: dict[str, Tensor] | None = None,
        weights: Tensor | None = None,
    ) -> Tensor | None:
        """The loss, or None when no anchor modality has two present rows in this batch."""
        present = present or {}
        losses = [
            loss
            for m, anchor in anchors.items()
            if (loss := masked_infonce(self.infonce, student, anchor, present.get(m), weights))
            is not None
        ]
        return torch.stack(losses).mean() if losses else None

    def forward(
        self,
        student: Tensor,
        anchors: dict[str, Tensor],
        present: dict[str, Tensor] | None = None,
        weights: Tensor | None = None,
    ) -> Tensor:
        loss = self.forward_or_none(student, anchors, present, weights)
        return loss if loss is not None else zero_loss(student)
