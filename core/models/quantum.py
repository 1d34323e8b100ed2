"""Variational quantum projection head (PennyLane), a drop-in for ProjectionHead.

This is the only module that uses PennyLane. It is imported when a head is built, so
importing this module (e.g. for `compression_report`) stays cheap. The circuit runs on the
`default.qubit` simulator with torch backprop, on the CPU; it is an experiment after the
source article's "future directions", not the production head.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from core.errors import ConfigError
from core.models.heads import Head

MAX_QUBITS = 12  # the simulated state has 2^n amplitudes per sample; beyond this it crawls


def _check_qubits(n_qubits: int) -> None:
    if not 1 <= n_qubits <= MAX_QUBITS:
        raise ConfigError(f"n_qubits must be in [1, {MAX_QUBITS}], got {n_qubits}")


class QuantumProjectionHead(Head):
    """(B, in_dim) -> trainable Linear -> n_qubits angles -> circuit -> <Z> readout -> Linear
    -> L2 norm, (B, out_dim).

        theta = pi * tanh(W_in x + b_in)                      (B, n_qubits), angles in (-pi, pi)
        |psi> = SEL(phi) RX(theta) |0...0>                    AngleEmbedding + n_layers of
                                                              StronglyEntanglingLayers
        m     = (<Z_i>, and <Z_i Z_j> for i < j with pair_readout)
        out   = normalise(W_out m + b_out)

    The Linear before the embedding is what makes the head trainable from the encoder side:
    without it, the fidelity's gradient w.r.t. the encoder weights is zero. StronglyEntangling
    layers: Schuld et al. 2020, "Circuit-centric quantum classifiers".
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        n_qubits: int = 4,
        n_layers: int = 2,
        pair_readout: bool = True,
    ) -> None:
        super().__init__(in_dim, out_dim)
        _check_qubits(n_qubits)
        if n_layers < 1:
            raise ConfigError(f"n_layers must be >= 1, got {n_layers}")
        import pennylane as qml

        self.n_qubits = n_qubits
        self.n_layers = n_layers
        wires = list(range(n_qubits))
        pairs = list(itertools.combinations(wires, 2)) if pair_readout else []
        self.n_measurements = n_qubits + len(pairs)

        self.encoder = nn.Linear(in_dim, n_qubits)
        weight_shape = qml.StronglyEntanglingLayers.shape(n_layers=n_layers, n_wires=n_qubits)
        # Uniform rotation angles in [0, 2 pi), as qml.qnn.TorchLayer initialises them.
        self.circuit_weights = nn.Parameter(torch.rand(weight_shape) * 2 * math.pi)
        self.readout = nn.Linear(self.n_measurements, out_dim)

        def prepare(angles: Tensor, weights: Tensor) -> None:
            qml.AngleEmbedding(angles, wires=wires, rotation="X")
            qml.StronglyEntanglingLayers(weights, wires=wires)

        def expectations(angles: Tensor, weights: Tensor) -> list:
            prepare(angles, weights)
            singles = [qml.expval(qml.PauliZ(i)) for i in wires]
            return singles + [qml.expval(qml.PauliZ(i) @ qml.PauliZ(j)) for i, j in pairs]

        def state(angles: Tensor, weights: Tensor) -> Tensor:
            prepare(angles, weights)
            return qml.state()

        device = qml.device("default.qubit", wires=n_qubits)
        self._expectations = qml.QNode(
            expectations, device, interface="torch", diff_method="backprop"
        )
        self._state = qml.QNode(state, device, interface="torch", diff_method="backprop")

    def angles(self, x: Tensor) -> Tensor:
        """Rotation angles (B, n_qubits) in (-pi, pi): tanh keeps them off the periodic wrap.

        Always float32: the circuit's complex amplitudes have no bfloat16 kernels on the CPU
        (a bf16 autocast around the student would otherwise reach them)."""
        return math.pi * torch.tanh(self.encoder(x.float()))

    def measure(self, x: Tensor) -> Tensor:
        """Expectation values (B, n_measurements), each in [-1, 1]."""
        with _no_autocast(x):
            values = self._expectations(self.angles(x), self.circuit_weights)  # n_meas x (B,)
        return torch.stack(list(values), dim=-1).to(x.dtype)  # (B, n_measurements)

    def state(self, x: Tensor) -> Tensor:
        """The prepared statevectors (B, 2^n_qubits), complex; input to FidelityLoss."""
        if x.dim() != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"expected (B, {self.in_dim}) features, got {tuple(x.shape)}")
        with _no_autocast(x):
            return self._state(self.angles(x), self.circuit_weights)

    def project(self, x: Tensor) -> Tensor:
        return self.readout(self.measure(x))  # (B, out_dim)


def _no_autocast(x: Tensor) -> torch.autocast:
    """Autocast switched off on x's device for the circuit (see `angles`)."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def compression_report(in_dim: int, n_qubits: int) -> dict[str, float | int]:
    """How far n qubits compress an in_dim embedding, counted honestly.

    A pure n-qubit state has 2^n complex amplitudes, i.e. 2^(n+1) - 2 real degrees of freedom
    (less the norm and the global phase); a head reads out only n + n(n-1)/2 expectation
    values. E.g. 256 dims -> 4 qubits: 16 amplitudes, 6.25% of the input dimensions.
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
        "readout_values": n_qubits + n_qubits * (n_qubits - 1) // 2,
        "amplitude_ratio": amplitudes / in_dim,
        "compression": 1 - amplitudes / in_dim,
    }
