"""AttributeLoss: which modality answers for which attribute, unknown labels, one hand value."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.losses.attributes import ATTRIBUTES_BY_MODALITY, AttributeLoss

G = 3  # genes in these tiny cases


def _logits(b: int, requires_grad: bool = True) -> dict[str, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    sizes = {"subtype": 4, "grade": 3, "genes": G}
    return {
        m: {a: torch.randn(b, sizes[a], requires_grad=requires_grad) for a in sizes}
        for m in ATTRIBUTES_BY_MODALITY
    }


def _labels(b: int) -> dict[str, torch.Tensor]:
    return {
        "subtype": torch.arange(b) % 4,
        "grade": torch.arange(b) % 3,
        "genes": (torch.arange(b * G).reshape(b, G) % 2).float(),
        "genes_known": torch.ones(b, dtype=torch.bool),
    }


def test_hand_computed_value_with_one_modality_present() -> None:
    logits, labels = _logits(2), _labels(2)
    present = {"slide": torch.tensor([True, False]), "genomic": torch.tensor([False, False]),
               "text": torch.tensor([False, False])}  # fmt: skip
    got = AttributeLoss()(logits, present, labels)
    s = logits["slide"]
    want = (F.cross_entropy(s["subtype"][:1], labels["subtype"][:1])
            + F.cross_entropy(s["grade"][:1], labels["grade"][:1])) / 2  # fmt: skip
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    got.backward()
    assert s["genes"].grad is None or s["genes"].grad.abs().sum() == 0  # slides carry no genes
    assert logits["genomic"]["genes"].grad is None


def test_correct_logits_cost_less_than_wrong_ones() -> None:
    b = 6
    labels = _labels(b)
    present = {m: torch.ones(b, dtype=torch.bool) for m in ATTRIBUTES_BY_MODALITY}

    def confident(right: bool) -> dict[str, dict[str, torch.Tensor]]:
        out = {}
        for m in ATTRIBUTES_BY_MODALITY:
            sub = F.one_hot((labels["subtype"] + (0 if right else 1)) % 4, 4).float() * 8
            grade = F.one_hot((labels["grade"] + (0 if right else 1)) % 3, 3).float() * 8
            genes = (labels["genes"] if right else 1 - labels["genes"]) * 16 - 8
            out[m] = {"subtype": sub, "grade": grade, "genes": genes}
        return out

    loss = AttributeLoss()
    assert (
        loss(confident(True), present, labels) < 0.01 < 5 < loss(confident(False), present, labels)
    )


def test_unknown_labels_and_absent_modalities_add_nothing() -> None:
    b = 4
    logits = _logits(b)
    present = {m: torch.ones(b, dtype=torch.bool) for m in ATTRIBUTES_BY_MODALITY}
    unknown = {"subtype": torch.full((b,), -1), "grade": torch.full((b,), -1),
               "genes": torch.ones(b, G), "genes_known": torch.zeros(b, dtype=torch.bool)}  # fmt: skip
    zero = AttributeLoss()(logits, present, unknown)
    assert zero.item() == 0.0
    zero.backward()  # graph-connected
    half = dict(_labels(b), subtype=torch.tensor([0, -1, -1, -1]))
    full = AttributeLoss()(_logits(b), present, half)
    assert math.isfinite(full.item()) and full.item() > 0
