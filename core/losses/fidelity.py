"""Fidelity loss between amplitude-encoded states: the source article's quantum distillation."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from core.losses.reduction import weighted_mean


class FidelityLoss(nn.Module):
    """1 - |<psi|phi>|^2 between the pure states two batches of vectors encode.

        psi_i = u_i / ||u_i||,  phi_i = v_i / ||v_i||     (amplitude encoding)
        F_i   = |<psi_i|phi_i>|^2                         (pure-state fidelity; Nielsen & Chuang,
                                                           "Quantum Computation and Quantum
                                                           Information", sec. 9.2.2)
        loss  = sum_i w_i * (1 - F_i) / sum_i w_i

    Which states: whatever the caller passes. For real vectors, such as the outputs of
    ProjectionHead or QuantumProjectionHead, F_i = cos^2(u_i, v_i), the fidelity of the
    log2(d)-qubit states whose real amplitudes are those vectors; for complex statevectors,
    such as QuantumProjectionHead.state (2^n amplitudes), it is the fidelity of the states the
    circuit actually prepares. A global phase (for real vectors, the sign) is unobservable, so
    v and -v are the same state: this loss cannot tell a vector from its opposite, unlike
    cosine or InfoNCE, which is why InfoNCE stays the alignment loss and this one is for the
    quantum-head experiment.

    Shapes: student (B, d), target (B, d), real or complex; weights (B,) or None -> scalar.
    The target is detached.
    """

    def per_sample(self, student: Tensor, target: Tensor) -> Tensor:
        """The unreduced loss 1 - F_i, shape (B,)."""
        if student.dim() != 2 or student.shape != target.shape:
            raise ValueError(
                f"expected two (B, d) batches, got {tuple(student.shape)}, {tuple(target.shape)}"
            )
        psi = F.normalize(student, dim=-1)  # (B, d)
        phi = F.normalize(target.detach(), dim=-1)  # (B, d)
        overlap = (psi.conj() * phi).sum(-1)  # (B,) <psi|phi>
        fidelity = (overlap * overlap.conj()).real  # (B,) |<psi|phi>|^2, real for complex states
        return 1 - fidelity

    def forward(self, student: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
        return weighted_mean(self.per_sample(student, target), weights)
