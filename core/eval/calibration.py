"""Temperature scaling of the student's cancer-type probabilities, and the abstention threshold
chosen on the calibrated ones.

Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks", sec. 4.2):
one scalar T > 0 divides every logit vector z (C,) before the softmax,

    p_T(c | x) = softmax(z / T)_c,

with T fitted on held-out labelled data by minimising the mean negative log-likelihood

    NLL(T) = -(1/N) sum_i log softmax(z_i / T)_{y_i}.

T > 1 softens the probabilities (the model was overconfident), T < 1 sharpens them (the model
was underconfident, as a student distilled from soft targets at a high KD temperature is).
The argmax, hence accuracy, does not change. NLL is convex in 1/T (a log-sum-exp of a linear
function minus a linear function), so it is unimodal in log T and a golden-section search
over a bounded log T interval finds the minimum deterministically.

The student's T is fitted on ENGLISH validation notes only (the only language with recorded
labels in training), so the calibration stays zero-shot in the target languages.

The abstention threshold (`selective_threshold`): the lowest calibrated top probability,
among `CalibrationConfig.thresholds`, at which the answered English validation notes reach
`target_accuracy`, and never below `min_threshold`: on calibrated probabilities a threshold t
means "answer only when the model itself estimates at least a t chance of being right", so
the floor is the per-answer confidence a clinician is shown at the least.

Importing this module does nothing; functions take CPU tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from core.errors import ConfigError, InputError
from core.eval.metrics import AbstentionRule, expected_calibration_error

GOLDEN = (math.sqrt(5) - 1) / 2  # 0.618..., the golden-section ratio


@dataclass(frozen=True)
class CalibrationConfig:
    """How the temperature and the abstention threshold are fitted."""

    min_temperature: float = 0.05  # search interval of T (log-spaced golden section)
    max_temperature: float = 20.0
    tolerance: float = 1e-5  # stop when the log T interval is this narrow
    ece_bins: int = 15  # equal-width bins of the recorded ECE (as `cmkd evaluate`)
    target_accuracy: float = 0.99  # selective accuracy the threshold must reach on English val
    min_threshold: float = 0.9  # floor of the calibrated top-probability threshold
    thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99)

    def __post_init__(self) -> None:
        if not 0 < self.min_temperature < self.max_temperature:
            raise ConfigError("need 0 < min_temperature < max_temperature")
        if self.tolerance <= 0 or self.ece_bins < 1:
            raise ConfigError("tolerance must be > 0 and ece_bins >= 1")
        if not 0 < self.target_accuracy <= 1 or not 0 <= self.min_threshold < 1:
            raise ConfigError("need 0 < target_accuracy <= 1 and 0 <= min_threshold < 1")


def nll(logits: Tensor, truth: Tensor, temperature: float = 1.0) -> float:
    """Mean NLL of softmax(logits / temperature): logits (N, C), truth (N,) class ids."""
    z = logits.double() / temperature
    return float(torch.nn.functional.cross_entropy(z, truth.long()))


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    nll_before: float  # at T = 1
    nll_after: float  # at the fitted T (<= nll_before whenever 1 is inside the interval)
    at_bound: bool  # the minimum lies at an end of the interval (e.g. every note correct)


def fit_temperature(
    logits: Tensor, truth: Tensor, cfg: CalibrationConfig = CalibrationConfig()
) -> TemperatureFit:
    """The T minimising `nll` over [min_temperature, max_temperature] (golden-section search
    on log T; see the module docstring). logits (N, C), truth (N,); InputError for N = 0.
    When every note is classified correctly NLL keeps falling as T -> 0 and the fit stops at
    min_temperature (at_bound is then True)."""
    if len(truth) == 0 or len(logits) != len(truth):
        raise InputError(f"cannot fit a temperature on {len(truth)} labels, {len(logits)} logits")
    z, y = logits.detach().double().cpu(), truth.long().cpu()

    def f(log_t: float) -> float:
        return nll(z, y, math.exp(log_t))

    lo, hi = math.log(cfg.min_temperature), math.log(cfg.max_temperature)
    a, b = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    fa, fb = f(a), f(b)
    while hi - lo > cfg.tolerance:
        if fa <= fb:  # the minimum is in [lo, b]
            hi, b, fb = b, a, fa
            a = hi - GOLDEN * (hi - lo)
            fa = f(a)
        else:  # in [a, hi]
            lo, a, fa = a, b, fb
            b = lo + GOLDEN * (hi - lo)
            fb = f(b)
    log_t = (lo + hi) / 2
    if cfg.min_temperature <= 1 <= cfg.max_temperature and f(log_t) > f(0.0):
        log_t = 0.0  # never worse than no calibration (guards a flat, noisy NLL)
    margin = min(log_t - math.log(cfg.min_temperature), math.log(cfg.max_temperature) - log_t)
    at_bound = margin < 10 * cfg.tolerance
    return TemperatureFit(math.exp(log_t), f(0.0), f(log_t), at_bound)


def selective_threshold(
    probs: Tensor, truth: Tensor, cfg: CalibrationConfig = CalibrationConfig()
) -> float:
    """The abstention threshold on calibrated probabilities probs (N, C), truth (N,): the
    lowest of cfg.thresholds (>= min_threshold) whose answered notes (top probability >= t)
    are at least target_accuracy correct; the highest candidate when none is."""
    conf, pred = probs.max(dim=1)
    correct = pred == truth
    candidates = sorted(t for t in cfg.thresholds if t >= cfg.min_threshold) or [cfg.min_threshold]
    for t in candidates:
        kept = conf >= t
        if not kept.any() or float(correct[kept].float().mean()) >= cfg.target_accuracy:
            return t
    return candidates[-1]


@dataclass(frozen=True)
class Calibration:
    """What config.json's "calibration" records (see `calibrate`)."""

    temperature: float  # divide the logits by it before the softmax
    threshold: float  # abstain when the calibrated top probability is below it
    fitted_on: str  # which notes, e.g. "en validation notes (val split, 412 notes)"
    n_notes: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    selective_accuracy: float | None  # on those notes at `threshold`; None: none answered
    abstention_rate: float  # on those notes at `threshold`
    target_accuracy: float
    at_bound: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in vars(self).items()}


def calibrate(
    logits: Tensor, truth: Tensor, fitted_on: str, cfg: CalibrationConfig = CalibrationConfig()
) -> Calibration:
    """Fit T on logits (N, C) and truth (N,), then the abstention threshold on the calibrated
    probabilities, with before/after NLL and ECE for the record."""
    fit = fit_temperature(logits, truth, cfg)
    raw = torch.softmax(logits.double(), dim=-1)
    cal = torch.softmax(logits.double() / fit.temperature, dim=-1)
    threshold = selective_threshold(cal, truth, cfg)
    conf, pred = cal.max(dim=1)
    kept = conf >= threshold
    selective = float((pred[kept] == truth[kept]).float().mean()) if kept.any() else None
    return Calibration(
        temperature=fit.temperature,
        threshold=threshold,
        fitted_on=fitted_on,
        n_notes=len(truth),
        nll_before=fit.nll_before,
        nll_after=fit.nll_after,
        ece_before=float(expected_calibration_error(raw, truth, cfg.ece_bins)),
        ece_after=float(expected_calibration_error(cal, truth, cfg.ece_bins)),
        selective_accuracy=selective,
        abstention_rate=float((~kept).float().mean()),
        target_accuracy=cfg.target_accuracy,
        at_bound=fit.at_bound,
    )


def _record(config: Mapping[str, Any]) -> Mapping[str, Any]:
    record = config.get("calibration") or {}
    if not isinstance(record, Mapping):
        raise InputError(f"calibration must be an object, got {type(record).__name__}")
    return record


def temperature_of(config: Mapping[str, Any]) -> float:
    """The temperature a student config.json records; 1.0 (uncalibrated) for students written
    before calibration. InputError for a value that is not a positive finite number."""
    t = float(_record(config).get("temperature", 1.0))
    if not (t > 0 and math.isfinite(t)):
        raise InputError(f"calibration temperature must be a positive number, got {t}")
    return t


def threshold_of(config: Mapping[str, Any]) -> float | None:
    """The calibrated abstention threshold a student config.json records; None before
    calibration (callers then keep their fixed rule)."""
    record = _record(config)
    return float(record["threshold"]) if "threshold" in record else None


def abstention_rule(config: Mapping[str, Any], fallback: AbstentionRule) -> AbstentionRule:
    """The abstention rule for a student's calibrated probabilities: `fallback` (e.g.
    metrics.CLASSIFY_ABSTENTION) with its threshold replaced by the one in the student's
    config.json; `fallback` itself for students distilled before calibration."""
    threshold = threshold_of(config)
    if threshold is None:
        return fallback
    return replace(fallback, below=threshold, calibrated=True)
