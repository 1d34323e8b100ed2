"""The quantum head's fidelity term: the fixed teacher-state encoding, the training term, and
the checkpoint that carries the encoding (tiny, CPU)."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

# The tiny cohort and fake teacher fixtures of the distillation tests, one per module.
from test_distill import TEACHER_DIM, TINY_STUDENT, cohort, teacher, tiny_config  # noqa: F401

from core.data.cohort import load_cases
from core.data.lexicon import default_lexicon
from core.errors import ConfigError, InputError
from core.eval.evaluate import (
    EvalConfig,
    _embed_with_states,
    _fidelity_retrieval,
    _state_space,
)
from core.eval.evaluate import (
    TestNotes as EvalNotes,  # renamed: pytest would take a Test* class for tests
)
from core.eval.metrics import CLASSIFY_ABSTENTION
from core.losses.combined import DistillationLoss
from core.losses.fidelity import FidelityLoss
from core.models.quantum import QuantumProjectionHead
from core.models.quantum_encoding import ENCODING_FILE, QuantumEncoding
from core.models.tokenizer import build_student_tokenizer
from core.train import common
from core.train.distill import (
    CONFIG_FILE,
    MODEL_INPUTS,
    DistillConfig,
    TextBatcher,
    _Batches,
    _build_model,
    distill,
    fact_buckets,
    fit_quantum_encoding,
    load_distilled,
    load_targets,
    make_optimizer,
    train_step,
    training_notes,
)
from core.train.teacher import load_teacher


def _embeddings(n: int = 80, d: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low_rank = torch.randn(n, 40, generator=g) @ torch.randn(40, d, generator=g)
    return F.normalize(low_rank + 0.05 * torch.randn(n, d, generator=g), dim=-1)


def test_encoding_is_deterministic_unit_norm_and_phase_fixed() -> None:
    x = _embeddings()
    a, b = QuantumEncoding.fit(x), QuantumEncoding.fit(x.clone())
    for name, tensor in a.state_dict().items():
        torch.testing.assert_close(tensor, b.state_dict()[name], rtol=0, atol=0)
    psi = a.encode(x[:7])
    assert psi.shape == (7, 16) and psi.is_complex()
    torch.testing.assert_close(psi.abs().pow(2).sum(-1), torch.ones(7))
    assert (psi[:, 0].real > 0).all() and (psi[:, 0].imag == 0).all()  # reference amplitude
    assert a.record()["components"] == 30 and 0.9 < a.record()["explained_variance"] <= 1.0
    torch.testing.assert_close(a.basis @ a.basis.T, torch.eye(30), atol=1e-5, rtol=0)
    # Distinct embeddings give distinct states; an embedding is closest to itself.
    fid = (psi.conj() @ a.encode(x[:7]).T).abs().pow(2)  # (7, 7)
    assert (fid.argmax(1) == torch.arange(7)).all()


def test_encoding_pads_missing_components_and_validates() -> None:
    small = QuantumEncoding.fit(_embeddings(n=10, d=TEACHER_DIM))  # 10 notes: 10 components
    assert small.record()["components"] == 10 and small.basis.shape == (30, TEACHER_DIM)
    psi = small.encode(_embeddings(n=3, d=TEACHER_DIM, seed=1))
    assert torch.isfinite(psi.real).all() and psi.shape == (3, 16)
    with pytest.raises(ValueError):
        QuantumEncoding.fit(torch.zeros(1, 8))
    with pytest.raises(ValueError):
        small.encode(torch.zeros(2, TEACHER_DIM + 1))


def test_readout_init_decodes_an_encoded_state_to_its_reconstruction() -> None:
    x = _embeddings()
    enc = QuantumEncoding.fit(x)
    head = QuantumProjectionHead(12, x.shape[1])
    head.init_readout(enc)
    psi = enc.encode(x[:5])
    # What the head reads out of a state equal to the teacher's: v's 30-PC reconstruction.
    decoded = F.normalize(head.readout(head._features(psi, torch.float32)), dim=-1)
    torch.testing.assert_close(decoded, enc.reconstruct(x[:5]), atol=1e-5, rtol=1e-4)
    assert (F.cosine_similarity(decoded, x[:5]) > 0.95).all()
    # And a global phase (unobservable) changes nothing.
    turned = head.readout(
        head._features(psi * complex(math.cos(1.0), math.sin(1.0)), torch.float32)
    )
    torch.testing.assert_close(F.normalize(turned, dim=-1), decoded, atol=1e-5, rtol=1e-4)
    with pytest.raises(ConfigError):
        QuantumProjectionHead(12, x.shape[1] + 1).init_readout(enc)


def test_encoding_round_trips_through_safetensors(tmp_path: Path) -> None:
    enc = QuantumEncoding.fit(_embeddings())
    enc.save(tmp_path / ENCODING_FILE)
    back = QuantumEncoding.load(tmp_path / ENCODING_FILE)
    x = _embeddings(n=4, seed=2)
    torch.testing.assert_close(back.encode(x), enc.encode(x))
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError):
        QuantumEncoding.load(tmp_path / "bad.safetensors")


def test_config_validates_the_fidelity_weight() -> None:
    cfg = DistillConfig(head="quantum", quantum_fidelity_weight=0.5)
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ConfigError, match="quantum_fidelity_weight"):
            DistillConfig(quantum_fidelity_weight=bad)


def _quantum_setup(cohort: Path, teacher: Path, **changes):  # noqa: F811
    cfg = tiny_config(cohort.parent, head="quantum", use_parallel=False, **changes)
    targets = load_targets(teacher, "note")
    rows = training_notes(load_cases(cohort), targets, cfg)
    tok = build_student_tokenizer([r.text for r in rows], cohort.parent / "qtok", extra_vocab=50)
    concepts = tuple(default_lexicon().concepts)
    student_cfg = dataclasses.replace(TINY_STUDENT, n_entities=len(concepts) + 1)
    encoding = fit_quantum_encoding(targets, rows)
    torch.manual_seed(0)
    model = _build_model(cfg, student_cfg, tok, load_teacher(teacher)[0], concepts, encoding)
    batcher = TextBatcher(tok, concepts, cfg.max_length, True, fact_buckets=fact_buckets(model))
    batch_rows = [next(i for i, r in enumerate(rows) if r.teacher_row == t)
                  for t in sorted({r.teacher_row for r in rows})[:6]]  # fmt: skip
    batch = _Batches([(batch_rows, [])], rows, [], torch.zeros(0, TEACHER_DIM), targets, batcher)[0]
    return cfg, model, batch


def test_fidelity_term_trains_the_circuit_and_the_encoder(cohort: Path, teacher: Path) -> None:  # noqa: F811
    cfg, model, batch = _quantum_setup(cohort, teacher)
    assert model.encoding is not None
    inputs = {k: batch[k] for k in MODEL_INPUTS}
    z, _, _, psi = model(**inputs, with_state=True)
    torch.testing.assert_close(z, model(**inputs)[0])  # one circuit run gives both
    FidelityLoss()(psi, model.encoding.encode(batch["teacher_emb"])).backward()
    for p in (model.head.circuit_weights, model.head.encoder.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    # ... and reaches the text encoder under the head.
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    model.zero_grad()
    with common.torch_threads(cfg.threads):
        parts = [
            train_step(model, batch, DistillationLoss(cfg.loss), make_optimizer(model, cfg), cfg,
                       torch.device("cpu"))
            for _ in range(2)
        ]  # fmt: skip
    assert all(0.0 <= p["fidelity"] <= 1.0 and math.isfinite(p["loss"]) for p in parts)


def test_frozen_readout_stays_the_decoder_while_the_circuit_trains(
    cohort: Path, teacher: Path
) -> None:  # noqa: F811
    cfg, model, batch = _quantum_setup(cohort, teacher)
    assert cfg.quantum_readout_frozen
    weight, bias = model.encoding.decoder()
    circuit = model.head.circuit_weights.detach().clone()
    with common.torch_threads(cfg.threads):
        for _ in range(2):
            train_step(model, batch, DistillationLoss(cfg.loss), make_optimizer(model, cfg), cfg,
                       torch.device("cpu"))  # fmt: skip
    torch.testing.assert_close(model.head.readout.weight, weight)
    torch.testing.assert_close(model.head.readout.bias, bias)
    assert not torch.equal(model.head.circuit_weights, circuit)


def test_trainable_readout_moves_and_frozen_needs_the_init(cohort: Path, teacher: Path) -> None:  # noqa: F811
    cfg, model, batch = _quantum_setup(cohort, teacher, quantum_readout_frozen=False)
    before = model.head.readout.weight.detach().clone()
    with common.torch_threads(cfg.threads):
        train_step(model, batch, DistillationLoss(cfg.loss), make_optimizer(model, cfg), cfg,
                   torch.device("cpu"))  # fmt: skip
    assert not torch.equal(model.head.readout.weight, before)
    with pytest.raises(ConfigError, match="quantum_readout_frozen needs quantum_readout_init"):
        DistillConfig(head="quantum", quantum_readout_init=False)
    DistillConfig(head="quantum", quantum_readout_init=False, quantum_readout_frozen=False)


def test_weight_zero_adds_no_fidelity_term(cohort: Path, teacher: Path) -> None:  # noqa: F811
    cfg, model, batch = _quantum_setup(cohort, teacher, quantum_fidelity_weight=0.0)
    with common.torch_threads(cfg.threads):
        parts = train_step(
            model, batch, DistillationLoss(cfg.loss), make_optimizer(model, cfg), cfg,
            torch.device("cpu"),
        )  # fmt: skip
    assert "fidelity" not in parts and math.isfinite(parts["loss"])


@pytest.fixture(scope="module")
def quantum_run(cohort: Path, teacher: Path) -> Path:  # noqa: F811
    """One tiny quantum-head distillation shared by the checks on its output."""
    cfg = tiny_config(cohort.parent, head="quantum", use_parallel=False, gene_weight=0.0)
    return distill(cohort, teacher, cohort.parent / "student-quantum", cfg)


def test_quantum_student_round_trips_with_its_encoding(quantum_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(quantum_run, out)
    config = json.loads((out / CONFIG_FILE).read_text())
    record = config["quantum_encoding"]
    assert record["file"] == ENCODING_FILE and record["n_qubits"] == 4
    assert (out / ENCODING_FILE).is_file()
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0.0 <= metrics["train"]["fidelity"] <= 1.0
    student = load_distilled(out)
    assert student.model.encoding is not None
    again = load_distilled(out)
    for name, tensor in student.model.encoding.state_dict().items():
        torch.testing.assert_close(tensor, again.model.encoding.state_dict()[name])
    texts = ["Adenocarcinoma do pulmão, EGFR mutado.", "carcinoma ductal"]
    z, _ = student.predict(texts, "pt")
    torch.testing.assert_close(z, again.predict(texts, "pt")[0])
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(2))
    # A quantum student written before the fidelity term (no record) still loads, without one.
    del config["quantum_encoding"]
    (out / CONFIG_FILE).write_text(json.dumps(config))
    assert load_distilled(out).model.encoding is None


def test_fidelity_retrieval_matches_exact_search() -> None:
    enc = QuantumEncoding.fit(_embeddings())
    gallery = enc.encode(_embeddings(n=20, seed=3))  # (20, 16)
    noisy = enc.encode(_embeddings(n=20, seed=3) + 0.02 * torch.randn(20, 48))
    own = torch.arange(20)
    top1, mean_fid = _fidelity_retrieval(noisy, gallery, own)
    exact = [max(range(20), key=lambda j: abs(complex(noisy[i].conj() @ gallery[j])) ** 2)
             for i in range(20)]  # fmt: skip
    assert top1 == pytest.approx(sum(e == i for i, e in enumerate(exact)) / 20)
    assert 0.0 < mean_fid <= 1.0 + 1e-6
    assert _fidelity_retrieval(gallery, gallery, own) == pytest.approx((1.0, 1.0))


def test_state_space_figures_of_a_distilled_quantum_student(quantum_run: Path) -> None:
    student = load_distilled(quantum_run)
    texts = ["Adenocarcinoma do pulmão, EGFR mutado.", "carcinoma ductal", "sarcoma", "HER2"]
    z, psi = _embed_with_states(student, texts, "pt", batch_size=3)
    torch.testing.assert_close(z, student.predict(texts, "pt")[0])  # the same embeddings
    torch.testing.assert_close(psi.abs().pow(2).sum(-1), torch.ones(4))
    gallery = F.normalize(torch.randn(5, TEACHER_DIM, generator=torch.Generator().manual_seed(0)))
    notes = EvalNotes(
        texts={"pt": texts}, rows=torch.zeros(4), kinds=torch.zeros(4), truth=torch.zeros(4),
        drivers=torch.zeros(4, 1), own_note=torch.tensor([0, 1, 2, 3]), note_gallery=gallery,
        n_cases=4,
    )  # fmt: skip
    # The quantum student stands in for the classical one: the same embeddings, encoded.
    out = _state_space(
        student.model.encoding, {"pt": psi}, student, notes, ["pt"], EvalConfig(CLASSIFY_ABSTENTION)
    )
    for key in ("quantum_state_alignment_accuracy", "classical_state_alignment_accuracy",
                "classical_bottleneck_alignment_accuracy", "quantum_mean_fidelity",
                "classical_mean_fidelity", "teacher_bottleneck_alignment_accuracy"):  # fmt: skip
        assert 0.0 <= out[key] <= 1.0 + 1e-6, key
    assert out["encoding"]["n_qubits"] == 4 and set(out["by_language"]) == {"pt"}
