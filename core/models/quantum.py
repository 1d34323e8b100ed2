"""Variational quantum projection head (PennyLane), a drop-in for ProjectionHead.

This is the only module that uses PennyLane. It is imported when a head is built, so
importing this module (e.g. for `compression_report`) stays cheap. The circuit runs on the
`default.qubit` simulator with torch backprop, on the CPU; it is an experiment after the
source article's "future directions", not the production head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ConfigError
from core.models.heads import Head
from core.models.quantum_encoding import QuantumEncoding

MAX_QUBITS = 12  # the simulated state has 2^n amplitudes per sample; beyond this it crawls


def _check_qubits(n_qubits: int) -> None:
    if not 1 <= n_qubits <= MAX_QUBITS:
        raise ConfigError(f"n_qubits must be in [1, {MAX_QUBITS}], got {n_qubits}")


class QuantumProjectionHead(Head):
    """(B, in_dim) -> Linear -> 2^n amplitudes -> circuit -> density matrix -> Linear -> L2
    norm, (B, out_dim).

        a      = W_in x + b_in, read as 2^n complex numbers      (B, 2^n)
        |psi0> = a / ||a||                                      amplitude encoding (StatePrep)
        |psi>  = SEL(phi) |psi0>                                n_layers StronglyEntanglingLayers
        rho    = |psi><psi|                                     (B, 2^n, 2^n)
        out    = normalise(W_out [Re rho, Im rho] + b_out)

    The representation is the 4-qubit state itself: 2^(n+1) - 2 real degrees of freedom (30 for
    4 qubits), which is how the source article counts "768 dims -> 4 qubits" as a 96%
    compression. rho is what state tomography measures: the 4^n - 1 Pauli expectation values
    are linear in it, so the readout is physically a measurement, and the simulator hands it
    over exactly instead of estimating it from shots.

    Why not rotation angles and <Z> readout (this head's first version): 4 angles carry 4 real
    numbers into the circuit, and a 4-number bottleneck placed notes so poorly that it kept 3%
    of the classical head's alignment accuracy (docs/evaluation.md). Also honest to say: the
    Linear readout of rho could absorb any fixed unitary, so with this readout the variational
    layers add trainable parameters but no expressive power a classical map of rho lacks; the
    compression, not the circuit, is what the experiment measures. StronglyEntangling layers:
    Schuld et al. 2020, "Circuit-centric quantum classifiers".

    Distillation (DistillConfig.quantum_fidelity_weight) trains the prepared state |psi> itself
    towards a fixed amplitude encoding of the teacher's embedding (core/models/
    quantum_encoding.py) by fidelity, and `init_readout` starts the readout as that encoding's
    decoder. `embed_with_state` gives the output and the state from one circuit run.
    """

    def __init__(self, in_dim: int, out_dim: int, n_qubits: int = 4, n_layers: int = 2) -> None:
        super().__init__(in_dim, out_dim)
        _check_qubits(n_qubits)
        if n_layers < 1:
            raise ConfigError(f"n_layers must be >= 1, got {n_layers}")
        import pennylane as qml

        self.n_qubits = n_qubits
        self.n_layers = n_layers
        self.dim = 2**n_qubits
        self.n_measurements = 2 * self.dim * self.dim  # Re and Im of rho
        wires = list(range(n_qubits))

        self.encoder = nn.Linear(in_dim, 2 * self.dim)
        weight_shape = qml.StronglyEntanglingLayers.shape(n_layers=n_layers, n_wires=n_qubits)
        # Uniform rotation angles in [0, 2 pi), as qml.qnn.TorchLayer initialises them.
        self.circuit_weights = nn.Parameter(torch.rand(weight_shape) * 2 * math.pi)
        self.readout = nn.Linear(self.n_measurements, out_dim)

        def prepare(amplitudes: Tensor, weights: Tensor) -> None:
            qml.StatePrep(amplitudes, wires=wires)
            qml.StronglyEntanglingLayers(weights, wires=wires)

        def state(amplitudes: Tensor, weights: Tensor) -> Tensor:
            prepare(amplitudes, weights)
            return qml.state()

        device = qml.device("default.qubit", wires=n_qubits)
        self._state = qml.QNode(state, device, interface="torch", diff_method="backprop")

    def amplitudes(self, x: Tensor) -> Tensor:
        """The encoded state's amplitudes (B, 2^n), complex, unit norm.

        Always float32: the circuit's complex amplitudes have no bfloat16 kernels on the CPU
        (a bf16 autocast around the student would otherwise reach them)."""
        a = self.encoder(x.float())  # (B, 2 * 2^n)
        psi = torch.complex(a[:, : self.dim], a[:, self.dim :])  # (B, 2^n)
        # The epsilon keeps an all-zero encoding (possible only by accident) finite.
        return psi / (psi.abs().pow(2).sum(-1, keepdim=True).sqrt() + 1e-12)

    def measure(self, x: Tensor) -> Tensor:
        """The prepared state's density matrix as real features (B, 2 * 4^n): Re, then Im."""
        return self._features(self._prepared(x), x.dtype)

    def state(self, x: Tensor) -> Tensor:
        """The prepared statevectors (B, 2^n_qubits), complex; input to FidelityLoss."""
        self._check(x)
        return self._prepared(x)

    def embed_with_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """`forward` and `state` from one circuit run: (B, out_dim) unit vectors and the
        (B, 2^n) statevectors they are read from."""
        self._check(x)
        psi = self._prepared(x)  # (B, 2^n)
        z = self.readout(self._features(psi, x.dtype))  # (B, out_dim)
        return F.normalize(z, dim=-1), psi

    def project(self, x: Tensor) -> Tensor:
        return self.readout(self.measure(x))  # (B, out_dim)

    def init_readout(self, encoding: QuantumEncoding, trainable: bool = True) -> None:
        """Make the readout `encoding`'s decoder: a state equal to the encoding of a teacher
        embedding v is then read out as v's PCA reconstruction (core/models/quantum_encoding.py),
        so the fidelity term and the alignment losses pull the same way from the start. Not
        `trainable`: the readout stays that decoder (its parameters need no gradient)."""
        if encoding.n_qubits != self.n_qubits or encoding.dim != self.out_dim:
            raise ConfigError(
                f"encoding ({encoding.n_qubits} qubits, D={encoding.dim}) does not fit this head "
                f"({self.n_qubits} qubits, D={self.out_dim})"
            )
        weight, bias = encoding.decoder()
        with torch.no_grad():
            self.readout.weight.copy_(weight)
            self.readout.bias.copy_(bias)
        self.readout.requires_grad_(trainable)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected (B, {self.in_dim}) features, got {tuple(x.shape)}")

    def _prepared(self, x: Tensor) -> Tensor:
        """SEL(phi) |psi0>, (B, 2^n) complex, simulated in float32 (see `amplitudes`)."""
        with _no_autocast(x):
            return self._state(self.amplitudes(x), self.circuit_weights)

    @staticmethod
    def _features(psi: Tensor, dtype: torch.dtype) -> Tensor:
        """rho = |psi><psi| (exactly what qml.density_matrix returns for the pure state) as
        [Re rho, Im rho] flattened row-major, (B, 2 * 4^n)."""
        rho = psi.unsqueeze(2) * psi.conj().unsqueeze(1)  # (B, 2^n, 2^n)
        return torch.cat([rho.real.flatten(1), rho.imag.flatten(1)], dim=-1).to(dtype)


def _no_autocast(x: Tensor) -> torch.autocast:
    """Autocast switched off on x's device for the circuit (see `amplitudes`)."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def compression_report(in_dim: int, n_qubits: int) -> dict[str, float | int]:
    """How far n qubits compress an in_dim embedding, counted honestly.

    A pure n-qubit state has 2^n complex amplitudes, i.e. 2^(n+1) - 2 real degrees of freedom
    (less the norm and the global phase): everything the head passes on. E.g. 384 dims -> 4
    qubits: 30 real numbers, a 92% compression (the article: 768 -> 4 qubits, 96%).
    """
    _check_qubits(n_qubits)
    if in_dim < 1:
        raise ConfigError(f"in_dim must be >= 1, got {in_dim}")
    amplitudes = 2**n_qubits
    return {
        "in_dim": in_dim,
        "n_qubits": n_qubits,
        "amplitudes": amplitudes,
        "state_real_dof": 2 * amplitudes - 2,
        "amplitude_ratio": amplitudes / in_dim,
        "compression": 1 - (2 * amplitudes - 2) / in_dim,
    }
