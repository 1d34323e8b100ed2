"""Distillation objective: alpha * align + (1 - alpha) * KD + beta * CE, uncertainty-weighted,
plus gamma * hard negatives from staff review when a run has them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from core.errors import ConfigError
from core.losses.anchor import AnchorAlignmentLoss
from core.losses.ce import LabelCrossEntropy
from core.losses.hard_negative import HardNegativeLoss
from core.losses.infonce import InfoNCELoss
from core.losses.kd import KDLoss

UNCERTAINTY_MODES: tuple[str, ...] = ("downweight", "skip", "off")


@dataclass(frozen=True)
class DistillLossConfig:
    """Weights and temperatures of the distillation objective (defaults from the source article).

    `uncertainty_threshold` is in the units of the teacher's reported variance: the variance,
    over MC-dropout passes or ensemble members, of the teacher's probability for its predicted
    class (so in [0, 0.25]); it must follow whatever the teacher reports. That scale differs
    from teacher to teacher (the demo teacher's variances all lie below 0.01, so a fixed 0.05
    never fires), hence `uncertainty_quantile`: when > 0, distillation sets the threshold to
    that quantile of the teacher's variance over the run's training notes
    (`resolve_uncertainty_threshold`), and `uncertainty_threshold` is then ignored.
    """

    alpha: float = 0.7  # align share vs KD: alpha*align + (1-alpha)*KD (article: 0.7)
    temperature: float = 4.0  # KD softmax temperature T (article: T=2 too sharp, T=8 too flat)
    beta: float = 0.1  # weight of cross-entropy on labelled rows (article: 0.1)
    infonce_temperature: float = 0.07  # InfoNCE tau (article and CLIP's initial value)
    uncertainty_threshold: float = 0.05  # teacher variance above which a sample counts as unsure
    # > 0: the threshold is this quantile of the teacher's variance over the training notes
    # (0.9: the least certain 10% count as unsure); 0: uncertainty_threshold as given.
    uncertainty_quantile: float = 0.9
    uncertainty_mode: str = "downweight"  # "downweight", "skip" (article) or "off" (ablation)
    use_anchor: bool = True  # also align to the teacher's slide/genomic embeddings (article)
    # Share s of the anchor term in align = (1 - s) * InfoNCE + s * AnchorAlignment.
    anchor_share: float = 0.5
    # Weight of the hard-negative term on rows from staff review (used only by runs given
    # review feedback): small, so a few verdicts nudge the student without outweighing the
    # distillation targets of thousands of notes.
    gamma: float = 0.1
    hard_negative_margin: float = 0.2  # m of HardNegativeLoss (cosine units)

    def __post_init__(self) -> None:
        numbers = ("alpha", "temperature", "beta", "infonce_temperature", "uncertainty_threshold",
                   "uncertainty_quantile", "gamma", "hard_negative_margin",
                   "anchor_share")  # fmt: skip
        for name in numbers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number, got {value!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha}")
        if not 0.0 <= self.anchor_share <= 1.0:
            raise ConfigError(f"anchor_share must be in [0, 1], got {self.anchor_share}")
        if self.beta < 0 or self.gamma < 0:
            raise ConfigError(f"beta and gamma must be >= 0, got {self.beta}, {self.gamma}")
        if not 0.0 <= self.hard_negative_margin <= 1.0:
            raise ConfigError(
                f"hard_negative_margin must be in [0, 1], got {self.hard_negative_margin}"
            )
        for name in ("temperature", "infonce_temperature", "uncertainty_threshold"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.uncertainty_quantile < 1.0:
            raise ConfigError(
                f"uncertainty_quantile must be in [0, 1), got {self.uncertainty_quantile}"
            )
        if self.uncertainty_mode not in UNCERTAINTY_MODES:
            raise ConfigError(
                f"uncertainty_mode must be one of {UNCERTAINTY_MODES}, "
                f"got {self.uncertainty_mode!r}"
            )
        if not isinstance(self.use_anchor, bool):
            raise ConfigError(f"use_anchor must be true or false, got {self.use_anchor!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DistillLossConfig:
        """Build from a parsed JSON/TOML table; unknown keys raise ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown distillation loss keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def resolve_uncertainty_threshold(
    cfg: DistillLossConfig, variances: Tensor
) -> tuple[DistillLossConfig, dict[str, float]]:
    """The config with an absolute threshold, and a record of it for the run's config.json.

    With q = cfg.uncertainty_quantile > 0: tau = quantile_q(variances) over the run's training
    notes (N,), floored at a tiny positive value so a teacher without any variance keeps every
    weight at 1; the returned config has that tau and q = 0. With q = 0 the config is returned
    as is. The record: quantile, threshold, and the share of the notes above it.
    """
    v = variances.detach().float().flatten()  # (N,)
    if v.numel() == 0 or not bool(torch.isfinite(v).all()):
        raise ValueError("teacher variances must be finite and non-empty")
    q = cfg.uncertainty_quantile
    resolved = cfg
    if q > 0:
        tau = max(float(torch.quantile(v, q)), 1e-12)
        resolved = dataclasses.replace(cfg, uncertainty_threshold=tau, uncertainty_quantile=0.0)
    tau = resolved.uncertainty_threshold
    record = {
        "mode": cfg.uncertainty_mode,
        "quantile": q,
        "threshold": tau,
        "share_above": float((v > tau).float().mean()),
    }
    return resolved, record


def uncertainty_weights(variance: Tensor, cfg: DistillLossConfig) -> Tensor:
    """Per-sample distillation weights in [0, 1] from the teacher's variance (B,) -> (B,).

    With tau = cfg.uncertainty_threshold:
      - "skip":       w = 1 if variance <= tau else 0 (distil only what the teacher knows);
      - "downweight": w = min(1, tau / variance). Confident samples keep full weight exactly as
        in "skip", so the two modes differ only on the unsure ones; those fade smoothly
        (w = 1/2 at twice the threshold) instead of vanishing, so a teacher whose variances all
        sit slightly above tau still teaches something. Non-increasing in the variance.
      - "off":        w = 1.
    The weights carry no gradient.
    """
    v = variance.detach()  # (B,)
    if v.dim() != 1:
        raise ValueError(f"teacher variance must be (B,), got {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()) or bool((v < 0).any()):
        raise ValueError("teacher variance must be finite and non-negative")
    tau = cfg.uncertainty_threshold
    if cfg.uncertainty_mode == "skip":
        return (v <= tau).to(v.dtype)
    if cfg.uncertainty_mode == "downweight":
        return tau / v.clamp_min(tau)  # 1 up to tau, then tau / v
    return torch.ones_like(v)


class DistillationLoss(nn.Module):
    """alpha * align + (1 - alpha) * KD + beta * CE (source article's combined objective).

        align = InfoNCE(student_emb, teacher_emb)                          without anchors
        align = (1 - s) * InfoNCE(student_emb, teacher_emb) + s * AnchorAlignment
                                                         with anchors, s = anchor_share
        KD    = T^2 * KL(softmax(t / T) || softmax(s / T))                 (KDLoss)
        CE    = cross-entropy on labelled rows                             (LabelCrossEntropy)

    Uncertainty weights (`uncertainty_weights`) scale each sample's align, anchor and KD terms:
    they say how far to trust the teacher. CE is supervision from recorded labels, not from the
    teacher, so it is not weighted by the teacher's variance. A term whose coefficient is 0
    (alpha = 0, alpha = 1, beta = 0) is not computed at all, so it can neither add to the
    total nor pass gradient, and reads 0.0 in `parts`; so do the anchor term when disabled or
    unusable in the batch (fewer than 2 present rows per modality) and CE without labels.
    Teacher embeddings, logits and anchors are targets and are detached.

    forward shapes: student_emb (B, D), teacher_emb (B, D), student_logits (B, C),
    teacher_logits (B, C), labels (B,) long with -100 for unlabelled or None, teacher_variance
    (B,) or None, anchors: modality -> (B, D) or None, anchor_present: modality -> (B,) bool
    or None -> (total scalar, parts: align, anchor, kd, ce, mean_weight as floats).
    """

    def __init__(self, cfg: DistillLossConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else DistillLossConfig()
        self.align = InfoNCELoss(temperature=self.cfg.infonce_temperature)
        self.anchor = AnchorAlignmentLoss(temperature=self.cfg.infonce_temperature)
        self.kd = KDLoss(temperature=self.cfg.temperature)
        self.ce = LabelCrossEntropy()
        self.hard = HardNegativeLoss(margin=self.cfg.hard_negative_margin)

    def forward(
        self,
        student_emb: Tensor,
        teacher_emb: Tensor,
        student_logits: Tensor,
        teacher_logits: Tensor,
        labels: Tensor | None = None,
        teacher_variance: Tensor | None = None,
        anchors: Mapping[str, Tensor] | None = None,
        anchor_present: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        cfg = self.cfg
        weights = None
        if teacher_variance is not None and cfg.uncertainty_mode != "off":
            weights = uncertainty_weights(teacher_variance, cfg)  # (B,)
        parts = {"align": 0.0, "anchor": 0.0, "kd": 0.0, "ce": 0.0}
        parts["mean_weight"] = 1.0 if weights is None else float(weights.mean())
        terms: list[Tensor] = []

        if cfg.alpha > 0:
            align = self.align(student_emb, teacher_emb.detach(), weights)
            parts["align"] = float(align.detach())
            if cfg.use_anchor and anchors:
                anchor = self.anchor.forward_or_none(
                    student_emb,
                    {m: a.detach() for m, a in anchors.items()},
                    dict(anchor_present or {}),
                    weights,
                )
                if anchor is not None:
                    parts["anchor"] = float(anchor.detach())
                    align = (1 - cfg.anchor_share) * align + cfg.anchor_share * anchor
            terms.append(cfg.alpha * align)
        if cfg.alpha < 1:
            kd = self.kd(student_logits, teacher_logits, weights)
            parts["kd"] = float(kd.detach())
            terms.append((1 - cfg.alpha) * kd)
        if cfg.beta > 0 and labels is not None:
            ce = self.ce(student_logits, labels)
            parts["ce"] = float(ce.detach())
            terms.append(cfg.beta * ce)
        return torch.stack(terms).sum(), parts

    def add_hard_negatives(
        self,
        total: Tensor,
        parts: dict[str, float],
        query: Tensor,
        negative: Tensor,
        positive: Tensor | None = None,
        has_positive: Tensor | None = None,
    ) -> Tensor:
        """total + gamma * HardNegativeLoss(query, negative, positive, has_positive), the term
        recorded as parts["hard_negative"] (not computed when gamma is 0). Shapes as in
        HardNegativeLoss."""
        parts["hard_negative"] = 0.0
        if self.cfg.gamma == 0:
            return total
        hard = self.hard(query, negative, positive, has_positive)
        parts["hard_negative"] = float(hard.detach())
        return total + self.cfg.gamma * hard
