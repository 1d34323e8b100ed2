"""Behaviour tests of the distillation losses: values by hand, ordering, gradients, ablations."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.errors import ConfigError
from core.losses.anchor import AnchorAlignmentLoss
from core.losses.ce import LabelCrossEntropy
from core.losses.combined import (
    DistillationLoss,
    DistillLossConfig,
    resolve_uncertainty_threshold,
    uncertainty_weights,
)
from core.losses.fidelity import FidelityLoss
from core.losses.infonce import InfoNCELoss, pairwise_infonce
from core.losses.kd import KDLoss
from core.losses.reduction import weighted_mean

B, D, C = 8, 16, 5


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def paired(gen: torch.Generator, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.randn(B, D, generator=gen)
    return a, a + noise * torch.randn(B, D, generator=gen)


# --- reduction -----------------------------------------------------------------------------


def test_weighted_mean_matches_hand_value_and_handles_all_zero() -> None:
    v = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    assert weighted_mean(v, torch.tensor([1.0, 0.0, 3.0])).item() == pytest.approx(13 / 4)
    zero = weighted_mean(v, torch.zeros(3))
    zero.backward()
    assert zero.item() == 0.0
    assert torch.equal(v.grad, torch.zeros(3))
    with pytest.raises(ValueError):
        weighted_mean(v, torch.tensor([1.0, -1.0, 1.0]))


# --- InfoNCE -------------------------------------------------------------------------------


def test_infonce_hand_computed_2x2() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # rows normalise to (1, 0) and (c, c)
    c = 1 / math.sqrt(2)
    # logits = [[1, c], [0, c]] at tau = 1; each term is -log softmax of the diagonal entry.
    a_to_b = [math.log(1 + math.exp(c - 1)), math.log(1 + math.exp(-c))]
    b_to_a = [math.log(1 + math.exp(-1)), math.log(2)]
    one_way = InfoNCELoss(temperature=1.0, symmetric=False)(a, b)
    assert one_way.item() == pytest.approx(sum(a_to_b) / 2, rel=1e-6)
    both = InfoNCELoss(temperature=1.0)(a, b)
    assert both.item() == pytest.approx((sum(a_to_b) + sum(b_to_a)) / 4, rel=1e-6)


def test_infonce_matched_pairs_lower_than_shuffled(gen: torch.Generator) -> None:
    a, b = paired(gen)
    loss = InfoNCELoss()
    shuffled = b[torch.roll(torch.arange(B), 1)]
    assert loss(a, b).item() < 0.1 * loss(a, shuffled).item()


def test_infonce_finite_and_differentiable(gen: torch.Generator) -> None:
    a, b = (t.requires_grad_() for t in paired(gen, noise=1.0))
    loss = InfoNCELoss()(a, b)
    loss.backward()
    assert torch.isfinite(loss)
    for t in (a, b):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_infonce_weights_are_a_weighted_mean_and_all_zero_gives_zero(gen) -> None:
    a, b = paired(gen, noise=1.0)
    loss = InfoNCELoss()
    per = loss.per_sample(a, b)
    w = torch.rand(B, generator=gen)
    assert loss(a, b, w).item() == pytest.approx(((w * per).sum() / w.sum()).item(), rel=1e-6)
    a.requires_grad_()
    zero = loss(a, b, torch.zeros(B))
    zero.backward()
    assert zero.item() == 0.0 and a.grad is not None


def test_infonce_rejects_bad_config_and_shapes() -> None:
    with pytest.raises(ConfigError):
        InfoNCELoss(temperature=0.0)
    with pytest.raises(ValueError):
        InfoNCELoss()(torch.zeros(3, 4), torch.zeros(3, 5))


def test_pairwise_infonce_uses_rows_present_in_both_and_skips_thin_pairs(gen) -> None:
    crit = InfoNCELoss()
    emb = {m: torch.randn(B, D, generator=gen) for m in ("note", "slide", "genomic")}
    slide = torch.ones(B, dtype=torch.bool)
    slide[:3] = False
    genomic = torch.zeros(B, dtype=torch.bool)
    genomic[0] = True  # one row: pairs with genomic have no negatives and are skipped
    got = pairwise_infonce(emb, {"slide": slide, "genomic": genomic}, crit)
    assert got.item() == pytest.approx(crit(emb["note"][slide], emb["slide"][slide]).item())

    all_pairs = pairwise_infonce(emb, None, crit)
    expected = [crit(emb[x], emb[y]) for x, y in (("note", "slide"), ("note", "genomic"))]
    expected.append(crit(emb["slide"], emb["genomic"]))
    assert all_pairs.item() == pytest.approx(torch.stack(expected).mean().item())

    x = emb["note"].requires_grad_()
    none = pairwise_infonce(emb, dict.fromkeys(emb, genomic), crit)
    none.backward()
    assert none.item() == 0.0 and x.grad is not None


# --- anchor --------------------------------------------------------------------------------


def test_anchor_restricts_to_present_rows_and_averages_modalities(gen) -> None:
    loss = AnchorAlignmentLoss()
    student = torch.randn(B, D, generator=gen)
    anchors = {m: torch.randn(B, D, generator=gen) for m in ("slide", "genomic")}
    present = {"slide": torch.arange(B) % 2 == 0, "genomic": torch.ones(B, dtype=torch.bool)}
    rows = present["slide"]
    slide_only = loss.infonce(student[rows], anchors["slide"][rows])
    both = (slide_only + loss.infonce(student, anchors["genomic"])) / 2
    assert loss(student, anchors, present).item() == pytest.approx(both.item(), rel=1e-6)

    present["genomic"] = torch.arange(B) == 0  # a single row: skipped
    assert loss(student, anchors, present).item() == pytest.approx(slide_only.item(), rel=1e-6)

    present["slide"] = torch.arange(B) == 1
    assert loss.forward_or_none(student, anchors, present) is None
    assert loss(student, anchors, present).item() == 0.0


def test_anchor_matched_lower_than_mismatched(gen: torch.Generator) -> None:
    student, slide = paired(gen)
    loss = AnchorAlignmentLoss()
    mismatched = slide[torch.roll(torch.arange(B), 3)]
    assert loss(student, {"slide": slide}).item() < loss(student, {"slide": mismatched}).item()


# --- KD ------------------------------------------------------------------------------------


def test_kd_zero_for_identical_logits(gen: torch.Generator) -> None:
    logits = torch.randn(B, C, generator=gen)
    assert KDLoss()(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_kd_matches_hand_formula_with_t_squared(gen: torch.Generator) -> None:
    s, t = torch.randn(B, C, generator=gen), 3 * torch.randn(B, C, generator=gen)
    T = 4.0

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p_t, p_s = softmax(t.numpy() / T), softmax(s.numpy() / T)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(-1).mean()
    assert KDLoss(T)(s, t).item() == pytest.approx(T**2 * kl, rel=1e-5)


def test_kd_t_squared_keeps_large_temperature_limit_finite(gen: torch.Generator) -> None:
    # T^2 * KL -> (1 / 2C) * sum_c (d_c - mean d)^2 with d = t - s (Hinton et al. 2015, sec. 2.1)
    s, t = (torch.randn(B, C, generator=gen, dtype=torch.float64) for _ in range(2))
    d = t - s
    limit = ((d - d.mean(-1, keepdim=True)) ** 2).sum(-1).mean() / (2 * C)
    assert KDLoss(200.0)(s, t).item() == pytest.approx(limit.item(), rel=2e-2)


def test_kd_weights_and_no_gradient_into_teacher(gen: torch.Generator) -> None:
    s = torch.randn(B, C, generator=gen, requires_grad=True)
    t = torch.randn(B, C, generator=gen, requires_grad=True)
    kd = KDLoss()
    w = torch.zeros(B)
    w[2] = 1.0
    assert kd(s, t, w).item() == pytest.approx(kd.per_sample(s, t)[2].item())
    kd(s, t).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None


# --- CE ------------------------------------------------------------------------------------


def test_ce_ignores_unlabelled_rows(gen: torch.Generator) -> None:
    logits = torch.randn(4, C, generator=gen)
    labels = torch.tensor([0, -100, 3, -100])
    ce = LabelCrossEntropy()
    expected = F.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    assert ce(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    changed = logits.clone()
    changed[1] += 10 * torch.randn(C, generator=gen)
    assert ce(changed, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    # weights on unlabelled rows do not leak into the denominator
    w = torch.tensor([1.0, 5.0, 1.0, 5.0])
    assert ce(logits, labels, w).item() == pytest.approx(expected.item(), rel=1e-6)


def test_ce_all_unlabelled_is_zero_with_grad(gen: torch.Generator) -> None:
    logits = torch.randn(3, C, generator=gen, requires_grad=True)
    loss = LabelCrossEntropy()(logits, torch.full((3,), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros(3, C))


# --- fidelity ------------------------------------------------------------------------------


def test_fidelity_loss_values_real_and_complex() -> None:
    fid = FidelityLoss()
    e = torch.eye(2)
    assert fid(e, e).item() == pytest.approx(0.0, abs=1e-7)
    assert fid(e, e.flip(0)).item() == pytest.approx(1.0)
    assert fid(e, -3 * e).item() == pytest.approx(0.0, abs=1e-7)  # global sign is unobservable
    u = torch.tensor([[1.0, 1.0]])
    assert fid(u, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)  # cos^2 45 deg
    plus = torch.tensor([[1, 1]], dtype=torch.complex64)
    plus_i = torch.tensor([[1, 1j]], dtype=torch.complex64)
    assert fid(plus, plus_i).item() == pytest.approx(0.5)  # |(1 + i) / 2|^2


# --- uncertainty weights and config --------------------------------------------------------


def test_uncertainty_weights_skip_downweight_off() -> None:
    v = torch.tensor([0.0, 0.02, 0.05, 0.06, 0.1, 0.2])
    skip = uncertainty_weights(v, DistillLossConfig(uncertainty_mode="skip"))
    assert skip.tolist() == [1, 1, 1, 0, 0, 0]
    down = uncertainty_weights(v, DistillLossConfig(uncertainty_mode="downweight"))
    assert down[:3].tolist() == [1, 1, 1]
    assert down[4].item() == pytest.approx(0.5)
    assert bool((down[1:] <= down[:-1]).all()) and bool((down > 0).all())
    off = uncertainty_weights(v, DistillLossConfig(uncertainty_mode="off"))
    assert torch.equal(off, torch.ones(6))
    with pytest.raises(ValueError):
        uncertainty_weights(torch.tensor([-0.1]), DistillLossConfig())


def test_quantile_threshold_follows_the_teachers_variance_scale() -> None:
    v = torch.arange(1, 101, dtype=torch.float32) / 10_000  # 0.0001 .. 0.01, below 0.05
    resolved, record = resolve_uncertainty_threshold(DistillLossConfig(), v)
    assert resolved.uncertainty_quantile == 0.0
    assert resolved.uncertainty_threshold == pytest.approx(float(torch.quantile(v, 0.9)))
    assert record["share_above"] == pytest.approx(0.1) and record["quantile"] == 0.9
    weights = uncertainty_weights(v, resolved)  # the least certain 10% are down-weighted
    assert int((weights < 1).sum()) == 10 and weights[-1].item() == pytest.approx(0.901, 1e-3)
    fixed = DistillLossConfig(uncertainty_quantile=0.0)  # the absolute threshold as given
    same, record = resolve_uncertainty_threshold(fixed, v)
    assert same == fixed and record["share_above"] == 0.0
    flat, _ = resolve_uncertainty_threshold(DistillLossConfig(), torch.zeros(5))
    assert flat.uncertainty_threshold > 0  # a teacher without variance keeps every weight
    assert torch.equal(uncertainty_weights(torch.zeros(5), flat), torch.ones(5))
    with pytest.raises(ConfigError):
        DistillLossConfig(uncertainty_quantile=1.0)


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    cfg = DistillLossConfig.from_dict({"alpha": 0.5, "uncertainty_mode": "skip"})
    assert cfg.alpha == 0.5 and cfg.temperature == 4.0
    assert DistillLossConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    with pytest.raises(ConfigError, match="alpah"):
        DistillLossConfig.from_dict({"alpah": 0.5})
    for bad in ({"alpha": 1.5}, {"temperature": 0}, {"uncertainty_mode": "drop"}, {"beta": "x"}):
        with pytest.raises(ConfigError):
            DistillLossConfig.from_dict(bad)


# --- combined ------------------------------------------------------------------------------


def batch(gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "student_emb": torch.randn(B, D, generator=gen, requires_grad=True),
        "teacher_emb": torch.randn(B, D, generator=gen),
        "student_logits": torch.randn(B, C, generator=gen, requires_grad=True),
        "teacher_logits": torch.randn(B, C, generator=gen),
        "labels": torch.tensor([0, 1, 2, -100, 4, 0, -100, 3]),
    }


def test_combined_default_is_weighted_sum_of_parts(gen: torch.Generator) -> None:
    total, parts = DistillationLoss()(**batch(gen))
    expected = 0.7 * parts["align"] + 0.3 * parts["kd"] + 0.1 * parts["ce"]
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert parts["anchor"] == 0.0 and parts["mean_weight"] == 1.0
    assert min(parts["align"], parts["kd"], parts["ce"]) > 0


def test_combined_alpha_one_removes_kd(gen: torch.Generator) -> None:
    b = batch(gen)
    loss = DistillationLoss(DistillLossConfig(alpha=1.0, beta=0.0))
    total, parts = loss(**b)
    other_teacher = dict(b, teacher_logits=10 * torch.randn(B, C, generator=gen))
    assert loss(**other_teacher)[0].item() == total.item()
    assert parts["kd"] == 0.0 and total.item() == pytest.approx(parts["align"])
    total.backward()
    assert b["student_logits"].grad is None


def test_combined_alpha_zero_removes_align_and_beta_zero_removes_ce(gen: torch.Generator) -> None:
    b = batch(gen)
    total, parts = DistillationLoss(DistillLossConfig(alpha=0.0, beta=0.0))(**b)
    assert parts["align"] == 0.0 and parts["ce"] == 0.0
    assert total.item() == pytest.approx(parts["kd"])
    total.backward()
    assert b["student_emb"].grad is None
    no_labels = DistillationLoss(DistillLossConfig(beta=0.0))
    assert no_labels(**b)[0].item() == no_labels(**dict(b, labels=None))[0].item()


def test_combined_averages_anchor_into_align(gen: torch.Generator) -> None:
    b = batch(gen)
    anchors = {"slide": torch.randn(B, D, generator=gen)}
    cfg = DistillLossConfig(alpha=1.0, beta=0.0)
    total, parts = DistillationLoss(cfg)(**b, anchors=anchors)
    assert parts["anchor"] > 0
    assert total.item() == pytest.approx((parts["align"] + parts["anchor"]) / 2, rel=1e-5)
    off = DistillationLoss(dataclasses.replace(cfg, use_anchor=False))(**b, anchors=anchors)
    assert off[1]["anchor"] == 0.0 and off[0].item() == pytest.approx(parts["align"])
    # no usable anchor in the batch: align is not halved
    thin = {"slide": torch.arange(B) == 0}
    got = DistillationLoss(cfg)(**b, anchors=anchors, anchor_present=thin)
    assert got[0].item() == pytest.approx(parts["align"])
    heavy = DistillationLoss(dataclasses.replace(cfg, anchor_share=0.8))(**b, anchors=anchors)
    assert heavy[0].item() == pytest.approx(0.2 * parts["align"] + 0.8 * parts["anchor"], rel=1e-5)
    with pytest.raises(ConfigError, match="anchor_share"):
        DistillLossConfig(anchor_share=1.5)


def test_combined_skip_ignores_unsure_teacher(gen: torch.Generator) -> None:
    b = batch(gen)
    variance = torch.full((B,), 0.01)
    variance[:3] = 0.2  # unsure about the first three samples
    loss = DistillationLoss(DistillLossConfig(alpha=0.0, beta=0.0, uncertainty_mode="skip"))
    total, parts = loss(**b, teacher_variance=variance)
    assert parts["mean_weight"] == pytest.approx(5 / B)
    noisy = b["teacher_logits"].clone()
    noisy[:3] = 10 * torch.randn(3, C, generator=gen)
    assert loss(**dict(b, teacher_logits=noisy), teacher_variance=variance)[0].item() == (
        pytest.approx(total.item())
    )
    unweighted = DistillationLoss(DistillLossConfig(alpha=0.0, beta=0.0))(**b)[0]
    assert unweighted.item() != pytest.approx(total.item())
