"""Metric functions of core.eval against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from core.eval.metrics import (
    AbstentionRule,
    accuracy,
    expected_calibration_error,
    group_recall_ceiling,
    micro_f1,
    recall_at_k,
    reliability_bins,
)
from core.eval.probe import ProbeConfig, fit_gene_probe


def test_ece_by_hand() -> None:
    # Confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.3 (right) in 3 classes.
    probs = torch.tensor([
        [0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.3, 0.3 - 1e-6, 0.4 + 1e-6],
    ])  # fmt: skip
    truth = torch.tensor([0, 1, 0, 2])
    # Last row: top class is 2 with p ~0.4 (right). Bins of 0.1 with n_bins=10:
    # (0.8, 0.9]: conf 0.9, 0.9, acc 0.5 -> |0.5 - 0.9| * 2/4 = 0.2
    # (0.5, 0.6]: conf 0.6, acc 1 -> 0.4 * 1/4 = 0.1;  (0.4, 0.5]: ~0.4, acc 1 -> 0.6 / 4 = 0.15
    assert expected_calibration_error(probs, truth, 10) == pytest.approx(0.45, abs=1e-5)
    bins = reliability_bins(probs, truth, 10)
    assert [b.count for b in bins] == [0, 0, 0, 0, 1, 1, 0, 0, 2, 0]
    assert bins[8].accuracy == 0.5 and bins[9].accuracy is None


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    probs = torch.tensor([[0.5, 0.5], [0.5, 0.5]])  # top class 0 at 0.5; one of two right
    assert expected_calibration_error(probs, torch.tensor([0, 1]), 15) == pytest.approx(0.0)
    assert expected_calibration_error(torch.empty(0, 2), torch.empty(0, dtype=torch.long)) is None


def test_micro_f1_by_hand() -> None:
    pred = torch.tensor([[1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    truth = torch.tensor([[1, 0, 0], [0, 1, 1]], dtype=torch.bool)
    # TP 2, FP 1, FN 1 -> 2*2 / (4 + 2) = 2/3
    assert micro_f1(pred, truth) == pytest.approx(2 / 3)
    assert micro_f1(torch.zeros(2, 3, dtype=torch.bool), truth) == 0.0
    assert micro_f1(torch.zeros(1, 2, dtype=torch.bool), torch.zeros(1, 2, dtype=torch.bool)) == 1
    with pytest.raises(ValueError):
        micro_f1(pred, truth[:1])


def test_recall_at_k_by_hand() -> None:
    gallery = torch.eye(4)  # (4, 4)
    queries = torch.tensor([[1.0, 0.5, 0.2, 0.0], [0.0, 0.0, 0.1, 1.0], [0.9, 0.8, 0.0, 0.7]])
    targets = torch.tensor([0, 2, 3])
    # Ranks of the targets: query 0 -> gallery 0 first; query 1 -> gallery 2 second;
    # query 2 -> gallery 3 third.
    assert recall_at_k(queries, gallery, targets, 1) == pytest.approx(1 / 3)
    assert recall_at_k(queries, gallery, targets, 2) == pytest.approx(2 / 3)
    assert recall_at_k(queries, gallery, targets, 10) == 1.0
    assert recall_at_k(queries[:0], gallery, targets[:0]) is None


def test_group_ceiling_is_k_over_group_size() -> None:
    gallery = ["a"] * 20 + ["b"] * 5 + ["c"]
    # A query of group a: 10/20; of b: 1 (5 <= 10); of c: 1.
    assert group_recall_ceiling(["a", "b", "c"], gallery, 10) == pytest.approx((0.5 + 1 + 1) / 3)
    assert group_recall_ceiling([], gallery) is None


def test_accuracy_and_abstention_rule() -> None:
    assert accuracy(torch.tensor([1, 2, 3]), torch.tensor([1, 0, 3])) == pytest.approx(2 / 3)
    assert accuracy(torch.tensor([]), torch.tensor([])) is None
    rule = AbstentionRule(0.5, frozenset({"gene", "cancer_type"}))
    assert not rule.abstains(0.9, ["gene", "finding"])
    assert rule.abstains(0.49, ["gene"])  # unsure
    assert rule.abstains(0.99, ["finding"])  # nothing about a tumour


def test_probe_learns_a_linear_multilabel_rule() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 8, generator=gen)
    y = torch.stack([x[:, 0] > 0.5, x[:, 1] < -0.5, x[:, 2] + x[:, 3] > 1.0], dim=1)
    probe = fit_gene_probe(x[:300], y[:300], x[300:350], y[300:350], ProbeConfig(ridge=0.01))
    assert 0.05 <= probe.threshold <= 0.95
    f1 = micro_f1(probe.predict(x[350:]), y[350:])
    everything = micro_f1(torch.ones_like(y[350:]), y[350:])  # predicting every gene
    assert f1 > 0.7 and f1 > everything + 0.2
