"""Metric functions of the evaluation: plain tensors in, floats out, no models.

Every function takes tensors on the CPU; shapes are given per argument.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def accuracy(pred: Tensor, truth: Tensor) -> float | None:
    """Share of pred (N,) equal to truth (N,); None for N = 0 (nothing to score)."""
    if len(truth) == 0:
        return None
    return float((pred == truth).float().mean())


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram."""

    lower: float  # the bin is (lower, upper]; the first bin also holds confidence 0
    upper: float
    count: int
    accuracy: float | None  # None when the bin is empty
    confidence: float | None  # mean top-class probability in the bin


def reliability_bins(probs: Tensor, truth: Tensor, n_bins: int = 15) -> list[ReliabilityBin]:
    """Top-label reliability bins: probs (N, C) rows summing to 1, truth (N,) class ids,
    `n_bins` equal-width bins of the top probability over [0, 1]."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    conf, pred = probs.max(dim=1)  # (N,), (N,)
    correct = (pred == truth).float()
    # Bin b holds (b/n, (b+1)/n]; ceil - 1 puts a confidence exactly on an edge in the lower bin.
    idx = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        rows = idx == b
        n = int(rows.sum())
        bins.append(
            ReliabilityBin(
                lower=b / n_bins,
                upper=(b + 1) / n_bins,
                count=n,
                accuracy=float(correct[rows].mean()) if n else None,
                confidence=float(conf[rows].mean()) if n else None,
            )
        )
    return bins


def expected_calibration_error(probs: Tensor, truth: Tensor, n_bins: int = 15) -> float | None:
    """ECE (Guo et al. 2017) = sum_b (n_b / N) |accuracy_b - confidence_b| over the
    `reliability_bins`; None for N = 0."""
    n = len(truth)
    if n == 0:
        return None
    return sum(
        b.count / n * abs(b.accuracy - b.confidence)
        for b in reliability_bins(probs, truth, n_bins)
        if b.count
    )


def micro_f1(pred: Tensor, truth: Tensor) -> float:
    """Micro-averaged F1 of multi-label predictions pred, truth (N, L) bool:
    2 TP / (2 TP + FP + FN) over every (row, label) cell. 1.0 when there is nothing to find
    and nothing is predicted (no cell can be wrong)."""
    if pred.shape != truth.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and truth {tuple(truth.shape)} differ")
    pred, truth = pred.bool(), truth.bool()
    tp = int((pred & truth).sum())
    wrong = int((pred ^ truth).sum())  # FP + FN
    return 1.0 if tp + wrong == 0 else 2 * tp / (2 * tp + wrong)


def recall_at_k(queries: Tensor, gallery: Tensor, targets: Tensor, k: int = 10) -> float | None:
    """Share of queries (N, D) whose target row of gallery (G, D) is among the k most
    similar by dot product (cosine for unit vectors); targets (N,) gallery row ids.
    None for N = 0. Ties at the k-th score count against the query (topk keeps k rows)."""
    if len(queries) == 0:
        return None
    if len(gallery) == 0:
        raise ValueError("recall_at_k needs a non-empty gallery")
    top = (queries @ gallery.T).topk(min(k, len(gallery)), dim=1).indices  # (N, k)
    return float((top == targets.unsqueeze(1)).any(1).float().mean())


def group_recall_ceiling(
    query_groups: Sequence[Hashable], gallery_groups: Sequence[Hashable], k: int = 10
) -> float | None:
    """Expected recall@k of a perfect model that can tell gallery items apart only by their
    group (e.g. tiles that depend on nothing but type, subtype and grade): it ranks the
    query's group first, in random order inside, so the target is in the top k with
    probability min(1, k / g) for a group of g gallery items. Each query's target must be in
    the gallery with the query's group. None when there are no queries."""
    if not query_groups:
        return None
    sizes: dict[Hashable, int] = {}
    for g in gallery_groups:
        sizes[g] = sizes.get(g, 0) + 1
    return sum(min(1.0, k / sizes[g]) for g in query_groups) / len(query_groups)


@dataclass(frozen=True)
class AbstentionRule:
    """When the student says it is unsure: no entity of an oncology category is found in the
    text, or the top probability is below `below`. `cmkd classify`, search and the
    evaluation all use CLASSIFY_ABSTENTION, with `below` replaced by the student's calibrated
    threshold when it has one (core.eval.calibration.abstention_rule)."""

    below: float
    oncology_categories: frozenset[str]
    # `below` applies to temperature-scaled probabilities (core.eval.calibration), chosen on
    # English validation notes; False: the fixed threshold on the raw softmax.
    calibrated: bool = False

    def reason(self, top_probability: float, categories: Iterable[str]) -> str:
        """Why the model abstains, or "" when it answers. categories: the lexicon categories
        of the entities found in the text."""
        if not any(c in self.oncology_categories for c in categories):
            return (
                "no tumour type, morphology, gene or biomarker found: "
                "the text may not be about cancer"
            )
        if top_probability < self.below:
            which = "the calibrated threshold " if self.calibrated else ""
            return f"unsure: top probability {top_probability:.2f} is below {which}{self.below:.2f}"
        return ""

    def abstains(self, top_probability: float, categories: Iterable[str]) -> bool:
        return bool(self.reason(top_probability, categories))


# Entity categories that show a text is about a tumour at all; below 0.5 the model is unsure.
CLASSIFY_ABSTENTION = AbstentionRule(
    0.5, frozenset({"cancer_type", "subtype", "morphology", "gene", "biomarker"})
)
