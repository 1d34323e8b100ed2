"""Classical and quantum projection heads: the shared unit-vector contract, gradients, training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError
from core.losses.fidelity import FidelityLoss
from core.models.heads import ClassifierHead, Head, ProjectionHead
from core.models.quantum import QuantumProjectionHead, compression_report

B, IN, OUT = 6, 12, 8
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(B, IN, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("hidden", [None, 32])
def test_projection_head_outputs_unit_vectors(x: torch.Tensor, hidden: int | None) -> None:
    torch.manual_seed(0)
    head = ProjectionHead(IN, OUT, hidden=hidden)
    z = head(5 * x)
    assert isinstance(head, Head) and z.shape == (B, OUT)
    assert torch.allclose(z.norm(dim=-1), torch.ones(B), atol=1e-5)
    with pytest.raises(ValueError):
        head(torch.zeros(B, IN + 1))


def test_head_is_abstract() -> None:
    with pytest.raises(TypeError):
        Head(IN, OUT)  # type: ignore[abstract]


def test_classifier_reads_the_projection(x: torch.Tensor) -> None:
    torch.manual_seed(0)
    head, clf = ProjectionHead(IN, OUT, dropout=0.0), ClassifierHead(OUT, n_classes=15)
    logits = clf(head(x))
    assert logits.shape == (B, 15)
    logits.logsumexp(-1).sum().backward()
    assert head.net[1].weight.grad.abs().sum() > 0  # the class signal trains the projection
    with pytest.raises(ConfigError):
        ClassifierHead(OUT, n_classes=1)


def test_quantum_head_shape_unit_norm_and_state(x: torch.Tensor) -> None:
    torch.manual_seed(0)
    head = QuantumProjectionHead(IN, OUT, n_qubits=3, n_layers=1)
    z = head(x)
    assert isinstance(head, Head) and z.shape == (B, OUT) and z.dtype == x.dtype
    assert torch.allclose(z.norm(dim=-1), torch.ones(B), atol=1e-5)
    psi = head.state(x)
    assert psi.shape == (B, 2**3) and psi.is_complex()
    assert torch.allclose(psi.abs().pow(2).sum(-1), torch.ones(B), atol=1e-5)
    assert FidelityLoss()(psi, psi).item() == pytest.approx(0.0, abs=1e-5)
    # The readout is the density matrix of that same state: rho = |psi><psi|.
    features = head.measure(x)
    assert features.shape == (B, 2 * 8 * 8)
    rho = torch.complex(features[:, :64], features[:, 64:]).reshape(B, 8, 8)
    expected = psi.unsqueeze(2) * psi.conj().unsqueeze(1)
    assert torch.allclose(rho, expected.to(rho.dtype), atol=1e-5)
    with pytest.raises(ConfigError):
        QuantumProjectionHead(IN, OUT, n_qubits=0)


def test_quantum_head_amplitudes_come_from_the_encoder(x: torch.Tensor) -> None:
    # Amplitude encoding: the state before the circuit is the normalised encoder output, so
    # two inputs the encoder maps to one direction prepare one state.
    torch.manual_seed(0)
    head = QuantumProjectionHead(IN, OUT, n_qubits=2, n_layers=1)
    a = head.encoder(x)
    psi0 = head.amplitudes(x)
    expected = torch.complex(a[:, :4], a[:, 4:])
    assert torch.allclose(psi0, expected / expected.abs().pow(2).sum(-1, keepdim=True).sqrt())
    with torch.no_grad():
        head.encoder.bias.zero_()
    assert torch.allclose(head.state(3 * x), head.state(x), atol=1e-5)


def test_quantum_head_gradient_reaches_the_pre_embedding_layer(x: torch.Tensor) -> None:
    torch.manual_seed(0)
    head = QuantumProjectionHead(IN, OUT)
    target = torch.randn(B, OUT)
    FidelityLoss()(head(x), target).backward()
    for p in (head.encoder.weight, head.circuit_weights, head.readout.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_quantum_head_learns_a_toy_target(x: torch.Tensor) -> None:
    torch.manual_seed(0)
    head = QuantumProjectionHead(IN, OUT)
    target = x @ torch.randn(IN, OUT, generator=torch.Generator().manual_seed(1))  # (B, OUT)
    loss_fn = FidelityLoss()
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    first = loss_fn(head(x), target).item()
    for _ in range(25):
        opt.zero_grad()
        loss = loss_fn(head(x), target)
        loss.backward()
        opt.step()
    assert loss_fn(head(x), target).item() < 0.5 * first


def test_compression_report_counts() -> None:
    r = compression_report(384, 4)
    assert r["amplitudes"] == 16 and r["state_real_dof"] == 30
    assert r["amplitude_ratio"] == pytest.approx(16 / 384)
    assert r["compression"] == pytest.approx(1 - 30 / 384)
    with pytest.raises(ConfigError):
        compression_report(256, 40)


def test_only_building_a_quantum_head_imports_pennylane() -> None:
    code = (
        "import sys, core.losses.combined, core.losses.fidelity, core.models.heads, "
        "core.models.quantum; print('pennylane' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "False"


def test_circuit_runs_under_cpu_bf16_autocast() -> None:
    # Distillation runs the student under bf16 autocast on CPUs that compute bf16 natively;
    # the circuit's complex amplitudes have no bf16 kernels and must stay in float32.
    torch.manual_seed(0)
    head = QuantumProjectionHead(8, 4)
    x = torch.randn(3, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(x)
    out.float().sum().backward()
    assert torch.isfinite(out.float()).all() and x.grad is not None and x.grad.abs().sum() > 0
