"""Case-attribute supervision of the teacher's shared space: subtype, grade and driver genes."""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from core.losses.gene_bce import GeneBCELoss
from core.losses.reduction import mean_or_zero, weighted_mean

# Which attributes each modality's content determines: tiles are rendered from type, subtype
# and grade; a VCF holds the driver events; a note may state all three.
ATTRIBUTES_BY_MODALITY: Mapping[str, tuple[str, ...]] = {
    "slide": ("subtype", "grade"),
    "genomic": ("genes",),
    "text": ("subtype", "grade", "genes"),
}


class AttributeLoss(nn.Module):
    """Mean, over the (modality m, attribute a) pairs of ATTRIBUTES_BY_MODALITY that have a
    labelled row with m present, of

        subtype, grade:  L_ma = sum_i k_ima * CE(s_ima, y_ia) / sum_i k_ima
        genes:           L_ma = GeneBCELoss(s_im, y_i, k_im)      (mean BCE over the G genes)

    k_ima = 1 when modality m is present in case i and attribute a is known (subtype or grade
    index >= 0; genes: the case has a variant call), s the attribute head's logits on e_im, the
    case's shared-space embedding of m. InfoNCE alone aligns modalities only as far as its
    in-batch negatives ask; these terms make every modality lay out the attributes that
    same-case retrieval must tell apart (subtype and grade decide the tiles, driver genes
    the variants) along shared directions. A batch with nothing labelled gives a
    graph-connected 0.

    Shapes: logits[m][a] (B, n_a) (genes: (B, G)), present[m] (B,) bool; labels "subtype",
    "grade" (B,) long with -1 unknown, "genes" (B, G) {0, 1}, "genes_known" (B,) bool
    -> scalar.
    """

    def __init__(self) -> None:
        super().__init__()
        self.genes = GeneBCELoss()

    def forward(
        self,
        logits: Mapping[str, Mapping[str, Tensor]],
        present: Mapping[str, Tensor],
        labels: Mapping[str, Tensor],
    ) -> Tensor:
        terms = []
        for m, attributes in ATTRIBUTES_BY_MODALITY.items():
            if m not in logits:
                continue
            for a in attributes:
                s = logits[m][a].float()
                if a == "genes":
                    known = present[m] & labels["genes_known"]
                    if known.any():
                        terms.append(self.genes(s, labels["genes"], known))
                    continue
                known = present[m] & (labels[a] >= 0)  # (B,)
                if known.any():
                    ce = F.cross_entropy(s, labels[a].clamp(min=0), reduction="none")  # (B,)
                    terms.append(weighted_mean(ce, known.to(ce.dtype)))
        like = next(iter(next(iter(logits.values())).values()))
        return mean_or_zero(terms, like)
