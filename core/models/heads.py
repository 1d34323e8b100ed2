"""Projection heads into the shared embedding space, and the classifier that reads them.

Every head maps encoder features (B, in_dim) to unit vectors (B, out_dim) in the teacher's
shared space; `Head` fixes that contract so the classical and the quantum head
(core/models/quantum.py) are interchangeable.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ConfigError


class Head(nn.Module, ABC):
    """(B, in_dim) -> (B, out_dim) unit vectors. Subclasses implement `project`; `forward`
    L2-normalises its output, so no head can forget to."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ConfigError(f"head dimensions must be >= 1, got in={in_dim}, out={out_dim}")
        self.in_dim = in_dim
        self.out_dim = out_dim

    @abstractmethod
    def project(self, x: Tensor) -> Tensor:
        """(B, in_dim) -> (B, out_dim), before normalisation."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected (B, {self.in_dim}) features, got {tuple(x.shape)}")
        return F.normalize(self.project(x), dim=-1)  # (B, out_dim)


class ProjectionHead(Head):
    """Classical head: Dropout -> Linear, or with `hidden`: Linear -> GELU -> Dropout -> Linear
    (the two-layer MLP projection of SimCLR, Chen et al. 2020); then L2 normalisation."""

    def __init__(
        self, in_dim: int, out_dim: int, hidden: int | None = None, dropout: float = 0.1
    ) -> None:
        super().__init__(in_dim, out_dim)
        if hidden is None:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
        else:
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, out_dim),
            )

    def project(self, x: Tensor) -> Tensor:
        return self.net(x)  # (B, out_dim)


class ClassifierHead(nn.Module):
    """Cancer-type logits from the PROJECTED embedding, (B, in_dim) unit vectors -> (B, n_classes).

    The source article's student sketch classifies the unprojected encoder output, so its
    classifier and its aligned embedding drift apart; reading the projection keeps the class
    decision in the shared space that distillation aligns. Unit vectors have coordinates of
    size ~1/sqrt(in_dim); scaling by sqrt(in_dim) gives the unit-variance inputs nn.Linear's
    initialisation assumes, so initial logits are not all ~0.
    """

    def __init__(self, in_dim: int, n_classes: int) -> None:
        super().__init__()
        if in_dim < 1 or n_classes < 2:
            raise ConfigError(f"need in_dim >= 1 and n_classes >= 2, got {in_dim}, {n_classes}")
        self.scale = math.sqrt(in_dim)
        self.linear = nn.Linear(in_dim, n_classes)

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(z * self.scale)  # (B, n_classes)
