"""Supervision of the teacher's slide embedding by what the tiles are rendered from."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import torch.nn.functional as F
from torch import Tensor, nn

from core.data.schema import CANCER_TYPES, NECROSIS_LEVELS, SUBTYPES, TIL_LEVELS, Case
from core.errors import ConfigError
from core.losses.reduction import mean_or_zero

# The attributes, each with its classes: every subtype of every type (CANCER_TYPES order),
# grades 1-3, and the histology levels the notes state.
SLIDE_ATTRIBUTES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "subtype": tuple(s for t in CANCER_TYPES for s in SUBTYPES[t]),
        "grade": ("1", "2", "3"),
        "til": TIL_LEVELS,
        "necrosis": NECROSIS_LEVELS,
    }
)


def slide_attribute_labels(case: Case) -> list[int]:
    """The case's class index per SLIDE_ATTRIBUTES entry, -1 where unknown (no subtype, grade
    0, a cohort from before histology)."""
    values = {
        "subtype": case.subtype,
        "grade": str(case.grade),
        "til": case.histology[0] if case.histology else "",
        "necrosis": case.histology[1] if case.histology else "",
    }
    return [
        classes.index(values[name]) if values[name] in classes else -1
        for name, classes in SLIDE_ATTRIBUTES.items()
    ]


class SlideAttributeLoss(nn.Module):
    """Mean over the attributes a of SLIDE_ATTRIBUTES that have a labelled row of

        L_a = (1 / |R_a|) * sum_{i in R_a} CE(W_a (sqrt(D) * e_i) + b_a, y_ia)

    e_i the case's slide embedding (a unit vector in the D-dim shared space), R_a the rows
    with a slide and a known y_ia. The linear read-outs (W_a, b_a) belong to this loss and are
    trained with the teacher, then dropped: they exist to make the slide embedding lay out
    what a note can state of a slide (subtype, grade, TIL and necrosis levels) along linear
    directions, which InfoNCE against notes that often leave those out teaches only slowly.
    Scaled by sqrt(D) like ClassifierHead, so unit vectors give unit-variance inputs. A batch
    with nothing labelled gives a graph-connected 0.

    Shapes: slide (B, D) float, present (B,) bool, labels (B, len(SLIDE_ATTRIBUTES)) long
    (-1 unknown) -> scalar.
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        if embed_dim < 1:
            raise ConfigError(f"embed_dim must be >= 1, got {embed_dim}")
        self.scale = math.sqrt(embed_dim)
        self.readouts = nn.ModuleList(
            nn.Linear(embed_dim, len(classes)) for classes in SLIDE_ATTRIBUTES.values()
        )

    def forward(self, slide: Tensor, present: Tensor, labels: Tensor) -> Tensor:
        if (
            labels.shape != (slide.shape[0], len(self.readouts))
            or present.shape != labels[:, 0].shape
        ):
            raise ValueError(
                f"expected slide (B, D), present (B,), labels (B, {len(self.readouts)}), got "
                f"{tuple(slide.shape)}, {tuple(present.shape)}, {tuple(labels.shape)}"
            )
        z = slide.float() * self.scale  # (B, D)
        terms = []
        for a, readout in enumerate(self.readouts):
            rows = present & (labels[:, a] >= 0)  # (B,)
            if rows.any():
                terms.append(F.cross_entropy(readout(z[rows]), labels[rows, a]))
        return mean_or_zero(terms, z)
