"""Behaviour of the slide-attribute supervision (core/losses/slide_attributes.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from core.data.schema import NECROSIS_LEVELS, TIL_LEVELS, Case
from core.losses.slide_attributes import (
    SLIDE_ATTRIBUTES,
    SlideAttributeLoss,
    slide_attribute_labels,
)

A = len(SLIDE_ATTRIBUTES)


def _loss(d: int = 8) -> SlideAttributeLoss:
    torch.manual_seed(0)
    return SlideAttributeLoss(d)


def test_labels_index_each_attribute_and_mark_the_unknown() -> None:
    case = Case(
        case_id="X", cancer_type="BRCA", label="BRCA", subtype="BRCA_TNBC", stage="II",
        grade=3, age=50, sex="F", split="train", histology=(TIL_LEVELS[2], NECROSIS_LEVELS[0]),
    )  # fmt: skip
    subtype, grade, til, necrosis = slide_attribute_labels(case)
    assert SLIDE_ATTRIBUTES["subtype"][subtype] == "BRCA_TNBC"
    assert (grade, til, necrosis) == (2, 2, 0)
    old = dataclasses.replace(case, subtype="", grade=0, histology=())
    assert slide_attribute_labels(old) == [-1] * A


def test_hand_computed_value_skips_unknown_labels_and_absent_slides() -> None:
    loss_fn = _loss()
    for readout in loss_fn.readouts:  # zero read-outs: every class equally likely
        torch.nn.init.zeros_(readout.weight)
        torch.nn.init.zeros_(readout.bias)
    slide = F.normalize(torch.randn(3, 8), dim=-1)
    present = torch.tensor([True, True, False])
    labels = torch.tensor([[0, 1, 2, -1], [-1, 0, 1, -1], [1, 1, 1, 1]])
    # Necrosis has no labelled row with a slide: the mean runs over the other three, each a
    # uniform CE of log(number of classes).
    n = [len(c) for c in SLIDE_ATTRIBUTES.values()]
    expected = (math.log(n[0]) + math.log(n[1]) + math.log(n[2])) / 3
    assert loss_fn(slide, present, labels).item() == pytest.approx(expected, rel=1e-6)


def test_right_read_outs_score_lower_and_gradients_reach_the_embedding() -> None:
    loss_fn = _loss()
    slide = F.normalize(torch.randn(16, 8), dim=-1).requires_grad_()
    present = torch.ones(16, dtype=torch.bool)
    labels = torch.stack([torch.randint(len(c), (16,)) for c in SLIDE_ATTRIBUTES.values()], dim=1)
    loss = loss_fn(slide, present, labels)
    loss.backward()
    assert torch.isfinite(loss) and slide.grad.abs().sum() > 0
    opt = torch.optim.SGD(loss_fn.parameters(), lr=0.5)
    for _ in range(200):  # the read-outs fit the labels: matched < mismatched
        opt.zero_grad()
        loss_fn(slide.detach(), present, labels).backward()
        opt.step()
    fitted = loss_fn(slide.detach(), present, labels)
    shuffled = loss_fn(slide.detach(), present, labels.roll(1, dims=0))
    assert fitted < shuffled and fitted < loss


def test_nothing_labelled_is_a_connected_zero_and_bad_shapes_fail() -> None:
    loss_fn = _loss()
    slide = torch.randn(2, 8, requires_grad=True)
    zero = loss_fn(slide, torch.zeros(2, dtype=torch.bool), torch.zeros(2, A, dtype=torch.long))
    zero.backward()
    assert zero.item() == 0.0
    with pytest.raises(ValueError, match="expected"):
        loss_fn(slide, torch.ones(2, dtype=torch.bool), torch.zeros(2, A - 1, dtype=torch.long))
