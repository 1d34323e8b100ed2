"""HardNegativeLoss and its place in DistillationLoss: hand values, ordering, gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from core.errors import ConfigError
from core.losses.combined import DistillationLoss, DistillLossConfig
from core.losses.hard_negative import HardNegativeLoss


def test_hand_computed_values_with_and_without_a_positive() -> None:
    loss = HardNegativeLoss(margin=0.2)
    q = torch.tensor([[2.0, 0.0], [1.0, 0.0]])  # the norm of q does not matter
    n = torch.tensor([[0.6, 0.8], [0.6, 0.8]])  # cos(q, n) = 0.6 for both
    p = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # cos(q, p) = 0 and 1
    # Without positives: max(0, 0.6 - 0.2) = 0.4 each.
    assert float(loss(q, n)) == pytest.approx(0.4)
    # Triplets: max(0, 0.2 + 0.6 - 0) = 0.8 and max(0, 0.2 + 0.6 - 1) = 0.
    torch.testing.assert_close(loss.per_sample(q, n, p), torch.tensor([0.8, 0.0]))
    # Row 1 has no positive: the cap applies to it (0.4), the triplet to row 0 (0.8).
    has = torch.tensor([True, False])
    assert float(loss(q, n, p, has)) == pytest.approx((0.8 + 0.4) / 2)


def test_a_query_near_its_negative_costs_more_than_one_near_its_positive() -> None:
    gen = torch.Generator().manual_seed(0)
    neg = F.normalize(torch.randn(8, 16, generator=gen), dim=-1)
    pos = F.normalize(torch.randn(8, 16, generator=gen), dim=-1)
    noise = 0.1 * torch.randn(8, 16, generator=gen)
    loss = HardNegativeLoss(margin=0.2)
    matched, mismatched = loss(pos + noise, neg, pos), loss(neg + noise, neg, pos)
    assert float(matched) < float(mismatched)
    assert float(loss(pos + noise, neg)) < float(loss(neg + noise, neg))  # without positives


def test_finite_differentiable_and_targets_get_no_gradient() -> None:
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(6, 8, generator=gen, requires_grad=True)
    n = torch.randn(6, 8, generator=gen, requires_grad=True)
    p = torch.zeros(6, 8)  # rows without a positive carry zeros (must not give NaN)
    has = torch.zeros(6, dtype=torch.bool)
    value = HardNegativeLoss(margin=0.0)(q, n, p, has)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    assert n.grad is None
    empty = torch.zeros(0, 8, requires_grad=True)
    zero = HardNegativeLoss()(empty, torch.zeros(0, 8))
    zero.backward()
    assert float(zero.detach()) == 0.0


def test_bad_margin_and_shapes_are_refused() -> None:
    with pytest.raises(ConfigError):
        HardNegativeLoss(margin=1.5)
    with pytest.raises(ValueError):
        HardNegativeLoss()(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ConfigError):
        DistillLossConfig(gamma=-0.1)
    with pytest.raises(ConfigError):
        DistillLossConfig.from_dict({"hard_negative_margin": 2.0})


def test_combined_loss_adds_gamma_times_the_term() -> None:
    q = torch.tensor([[1.0, 0.0]])
    n = torch.tensor([[1.0, 0.0]])  # cos 1: l = 1 - 0.2 = 0.8
    total = torch.tensor(1.5)
    parts: dict[str, float] = {}
    out = DistillationLoss(DistillLossConfig(gamma=0.5)).add_hard_negatives(total, parts, q, n)
    assert float(out) == pytest.approx(1.5 + 0.5 * 0.8)
    assert parts["hard_negative"] == pytest.approx(0.8)
    off = DistillationLoss(dataclasses.replace(DistillLossConfig(), gamma=0.0))
    parts = {}
    assert off.add_hard_negatives(total, parts, q, n) is total and parts["hard_negative"] == 0.0
