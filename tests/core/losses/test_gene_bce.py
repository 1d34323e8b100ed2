"""Behaviour of the driver-gene head's multi-label BCE (core/losses/gene_bce.py)."""

from __future__ import annotations

import math

import pytest
import torch

from core.losses.gene_bce import GeneBCELoss


def test_hand_computed_value_averages_genes_then_labelled_rows() -> None:
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0], [5.0, 5.0]])
    targets = torch.tensor([[True, False], [True, True], [False, False]])
    labelled = torch.tensor([True, True, False])  # the third row has no labels
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus: -log sigmoid(-x)
    row0 = (sp(-0.0) + sp(2.0)) / 2  # y=1 at logit 0, y=0 at logit 2
    row1 = (sp(-1.0) + sp(1.0)) / 2  # y=1 at logits 1 and -1
    loss = GeneBCELoss()(logits, targets, labelled)
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_matching_logits_score_lower_than_mismatched_and_gradient_flows() -> None:
    g = torch.Generator().manual_seed(0)
    targets = torch.rand(6, 10, generator=g) < 0.2
    labelled = torch.ones(6, dtype=torch.bool)
    good = (targets.float() * 2 - 1) * 3  # confident and right
    bad = -good  # confident and wrong
    loss_fn = GeneBCELoss()
    assert loss_fn(good, targets, labelled) < loss_fn(bad, targets, labelled)
    logits = torch.zeros(6, 10, requires_grad=True)
    loss = loss_fn(logits, targets, labelled)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None
    # d loss / d s = (sigmoid(s) - y) / (G * rows): negative where a gene is altered.
    assert bool((logits.grad[targets] < 0).all()) and bool((logits.grad[~targets] > 0).all())
    assert torch.isfinite(loss_fn(torch.full((2, 3), 1e4), torch.zeros(2, 3), labelled[:2]))


def test_unlabelled_rows_neither_count_nor_get_gradient() -> None:
    logits = torch.randn(4, 5, requires_grad=True)
    targets = torch.zeros(4, 5, dtype=torch.bool)
    labelled = torch.tensor([True, False, True, False])
    loss_fn = GeneBCELoss()
    full = loss_fn(logits, targets, labelled)
    assert full.item() == pytest.approx(
        loss_fn(logits[labelled], targets[labelled], torch.ones(2, dtype=torch.bool)).item()
    )
    full.backward()
    assert torch.equal(logits.grad[~labelled], torch.zeros(2, 5))
    none = loss_fn(logits, targets, torch.zeros(4, dtype=torch.bool))
    assert none.item() == 0.0 and none.requires_grad  # graph-connected zero


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="expected logits"):
        GeneBCELoss()(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="expected logits"):
        GeneBCELoss()(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(3, dtype=torch.bool))
