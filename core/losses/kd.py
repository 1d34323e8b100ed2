"""Hinton knowledge distillation on temperature-softened class distributions."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ConfigError
from core.losses.reduction import weighted_mean


class KDLoss(nn.Module):
    """Soft-target distillation loss of Hinton, Vinyals & Dean 2015 ("Distilling the Knowledge
    in a Neural Network").

        p_t = softmax(t / T),  p_s = softmax(s / T)
        l_i = T^2 * KL(p_t,i || p_s,i) = T^2 * sum_c p_t,ic * (log p_t,ic - log p_s,ic)
        loss = sum_i w_i * l_i / sum_i w_i        (batchmean when weights is None)

    The T^2 factor keeps the gradient magnitude independent of T (for large T, T^2 * KL tends
    to (1 / 2C) * sum_c (d_c - mean(d))^2 with d = t - s), so the KD term can be mixed with
    hard-label terms without retuning their weights when T changes. Same formula as
    torchdistill's KDLoss; the source article uses T = 4.

    Shapes: student_logits (B, C), teacher_logits (B, C), weights (B,) or None -> scalar.
    Teacher logits are a target: no gradient flows into them.
    """

    def __init__(self, temperature: float = 4.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ConfigError(f"KD temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def per_sample(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """The unreduced loss l_i, shape (B,)."""
        if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
            raise ValueError(
                "expected (B, C) student and teacher logits of one shape, got "
                f"{tuple(student_logits.shape)}, {tuple(teacher_logits.shape)}"
            )
        t = self.temperature
        log_p_s = F.log_softmax(student_logits / t, dim=-1)  # (B, C)
        log_p_t = F.log_softmax(teacher_logits.detach() / t, dim=-1)  # (B, C)
        kl = F.kl_div(log_p_s, log_p_t, reduction="none", log_target=True).sum(-1)  # (B,)
        return kl * t**2

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, weights: Tensor | None = None
    ) -> Tensor:
        return weighted_mean(self.per_sample(student_logits, teacher_logits), weights)
