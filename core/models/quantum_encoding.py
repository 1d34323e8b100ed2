"""A fixed encoding of teacher-space embeddings as n-qubit states, and its linear decoder.

The source article distils by fidelity: teacher and student embeddings are both mapped to
4-qubit states and the loss is 1 - |<teacher|student>|^2 (core/losses/fidelity.py). The
student's state is the one its QuantumProjectionHead prepares; the teacher's comes from this
encoding, fitted once per distillation run on the teacher's embeddings of the training cases'
English notes and then frozen (it is saved with the student, so evaluation reads the same
states):

    c      = P (v - mu)                              (B, K)  K = 2^(n+1) - 2 principal components
    a_0    = r                                       a reference amplitude, real and > 0
    a_k    = c_{k-1} + i c_{K/2 + k - 1}             k = 1 .. 2^n - 1
    |phi>  = a / ||a||                               amplitude encoding, (B, 2^n) complex

K = 2^(n+1) - 2 is the state's real degrees of freedom (30 for 4 qubits), so the state holds
exactly the top K principal components' direction and nothing else. The reference amplitude
fixes the global phase: without it the state's density matrix rho = |phi><phi| (what the head
reads out) would be quadratic in c and no linear readout could give the embedding back. With
it, column 0 of rho is linear in c:

    rho_k0 = a_k r / ||a||^2,  rho_00 = r^2 / ||a||^2
    sum_k [Re rho_k0 P_re,k + Im rho_k0 P_im,k] + rho_00 mu / r = (r / ||a||^2) (P^T c + mu)

i.e. a Linear readout of rho decodes the state to the PCA reconstruction of v up to a positive
scale, which the head's L2 normalisation removes (`init_readout`). The fidelity term and the
alignment losses then pull the head the same way. The reference r is the root mean square
norm of c over the fitting set divided by sqrt(2^n - 1): the size of a typical amplitude.

Principal components: the right singular vectors of the centred embeddings (torch.linalg.svd
in float64, each signed so that its largest coordinate is positive), hence deterministic. With
fewer than K components available (D or N too small, e.g. in tests) the rest are zero rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from core.errors import ConfigError, InputError

ENCODING_FILE = "quantum_encoding.safetensors"


class QuantumEncoding(nn.Module):
    """Teacher-space embeddings (B, D) -> n-qubit statevectors (B, 2^n), complex, unit norm.

    Buffers (saved and moved with the module, never trained): mean (D,), basis (K, D),
    reference () and explained (K,) (each component's share of the fitting set's variance)."""

    mean: Tensor
    basis: Tensor
    reference: Tensor
    explained: Tensor

    def __init__(self, n_qubits: int, dim: int) -> None:
        super().__init__()
        if n_qubits < 1 or dim < 1:
            raise ConfigError(f"need n_qubits >= 1 and dim >= 1, got {n_qubits}, {dim}")
        self.n_qubits = n_qubits
        self.amplitudes = 2**n_qubits
        self.n_components = 2 * self.amplitudes - 2  # K
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("basis", torch.zeros(self.n_components, dim))
        self.register_buffer("reference", torch.ones(()))
        self.register_buffer("explained", torch.zeros(self.n_components))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, embeddings: Tensor, n_qubits: int = 4) -> QuantumEncoding:
        """Fit on teacher embeddings (N, D), N >= 2: their mean and top principal axes."""
        if embeddings.dim() != 2 or len(embeddings) < 2:
            raise ValueError(f"expected (N >= 2, D) embeddings, got {tuple(embeddings.shape)}")
        enc = cls(n_qubits, embeddings.shape[1])
        x = embeddings.detach().double().cpu()
        mu = x.mean(0)  # (D,)
        _, s, vh = torch.linalg.svd(x - mu, full_matrices=False)  # vh (min(N, D), D)
        k = min(enc.n_components, len(vh))
        basis = vh[:k]  # (k, D)
        peak = basis.abs().argmax(1)  # (k,)
        basis = basis * basis.gather(1, peak[:, None]).sign()  # largest coordinate > 0
        var = s.pow(2)
        c = (x - mu) @ basis.T  # (N, k)
        rms = c.pow(2).sum(1).mean().sqrt()
        with torch.no_grad():
            enc.mean.copy_(mu.float())
            enc.basis[:k] = basis.float()
            enc.reference.fill_(float(rms) / (enc.amplitudes - 1) ** 0.5 or 1.0)
            enc.explained[:k] = (var[:k] / var.sum().clamp_min(1e-30)).float()
        return enc

    def components(self, v: Tensor) -> Tensor:
        """The principal-component coordinates c = P (v - mu), (B, K)."""
        if v.dim() != 2 or v.shape[-1] != self.dim:
            raise ValueError(f"expected (B, {self.dim}) embeddings, got {tuple(v.shape)}")
        return (v.float() - self.mean) @ self.basis.T  # (B, K)

    def encode(self, v: Tensor) -> Tensor:
        """The states |phi> (B, 2^n) complex64, unit norm, of embeddings v (B, D)."""
        c = self.components(v)  # (B, K)
        half = self.n_components // 2  # 2^n - 1
        ref = self.reference.expand(len(c), 1)  # (B, 1)
        re = torch.cat([ref, c[:, :half]], dim=1)  # (B, 2^n)
        im = torch.cat([torch.zeros_like(ref), c[:, half:]], dim=1)  # (B, 2^n)
        psi = torch.complex(re, im)
        return psi / psi.abs().pow(2).sum(-1, keepdim=True).sqrt()

    def reconstruct(self, v: Tensor) -> Tensor:
        """v's PCA reconstruction mu + P^T c, L2-normalised (B, D): what a perfect student
        state decodes to; the classical K-dimensional bottleneck control."""
        return nn.functional.normalize(self.components(v) @ self.basis + self.mean, dim=-1)

    def decoder(self) -> tuple[Tensor, Tensor]:
        """Weight (D, 2 * 4^n) and bias (D,) of a Linear that maps [Re rho, Im rho] (flattened
        row-major, as QuantumProjectionHead.measure gives them) of an encoded state to its
        reconstruction mu + P^T c times r / ||a||^2 > 0 (module docstring)."""
        d, half = self.amplitudes, self.n_components // 2
        weight = torch.zeros(self.dim, 2 * d * d)
        weight[:, 0] = self.mean / self.reference  # Re rho_00
        for k in range(1, d):
            weight[:, k * d] = self.basis[k - 1]  # Re rho_k0
            weight[:, d * d + k * d] = self.basis[half + k - 1]  # Im rho_k0
        return weight, torch.zeros(self.dim)

    def record(self) -> dict[str, Any]:
        """config.json's description of the encoding (the tensors are in ENCODING_FILE)."""
        return {
            "file": ENCODING_FILE,
            "n_qubits": self.n_qubits,
            "dim": self.dim,
            "components": int((self.basis.abs().sum(1) > 0).sum()),
            "explained_variance": round(float(self.explained.sum()), 4),
            "reference": float(self.reference),
        }

    def save(self, path: Path) -> None:
        from core.train.common import save_tensors

        save_tensors(path, self.state_dict(), metadata={"n_qubits": str(self.n_qubits)})

    @classmethod
    def load(cls, path: Path) -> QuantumEncoding:
        """Read ENCODING_FILE (safetensors, no pickle); InputError when it is missing or broken."""
        from core.train.common import load_tensors

        tensors, meta = load_tensors(path)
        try:
            enc = cls(int(meta["n_qubits"]), int(tensors["mean"].shape[0]))
            enc.load_state_dict(tensors)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise InputError(f"{path}: not a quantum encoding ({exc})") from exc
        return enc
