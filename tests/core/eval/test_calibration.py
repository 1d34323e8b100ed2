"""core.eval.calibration: temperature scaling and the calibrated abstention threshold, and how
the distilled student, `classify` and the reliability figure use them."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from core.errors import ConfigError, InputError
from core.eval import plots
from core.eval.calibration import (
    CalibrationConfig,
    abstention_rule,
    calibrate,
    fit_temperature,
    nll,
    selective_threshold,
    temperature_of,
    threshold_of,
)
from core.eval.metrics import CLASSIFY_ABSTENTION, expected_calibration_error
from core.train.distill import load_distilled


def _tempered(temperature: float, n: int = 4000, c: int = 6, seed: int = 0):
    """Labels drawn from softmax(s) and logits temperature * s: T = `temperature` is exact."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, c, generator=g) * 2.5
    truth = torch.multinomial(torch.softmax(scores, -1), 1, generator=g).squeeze(1)
    return scores * temperature, truth


@pytest.mark.parametrize("true_t", [0.4, 2.0])
def test_fit_recovers_a_known_temperature(true_t: float) -> None:
    logits, truth = _tempered(true_t)
    fit = fit_temperature(logits, truth)
    assert fit.temperature == pytest.approx(true_t, rel=0.08)
    assert not fit.at_bound
    assert fit.nll_after <= fit.nll_before
    assert fit.nll_after == pytest.approx(nll(logits, truth, fit.temperature))
    # The NLL is at a minimum: a little either side is no better.
    for factor in (0.97, 1.03):
        assert nll(logits, truth, fit.temperature * factor) >= fit.nll_after
    assert fit_temperature(logits, truth) == fit  # deterministic


def test_calibration_lowers_nll_and_ece_and_keeps_the_argmax() -> None:
    logits, truth = _tempered(0.4)  # underconfident, as the distilled student
    cal = calibrate(logits, truth, "synthetic")
    assert cal.nll_after <= cal.nll_before and cal.ece_after < cal.ece_before
    probs = torch.softmax(logits / cal.temperature, -1)
    assert torch.equal(probs.argmax(1), logits.argmax(1))
    assert cal.ece_after == pytest.approx(float(expected_calibration_error(probs, truth)))
    record = cal.to_dict()
    assert record["fitted_on"] == "synthetic" and json.loads(json.dumps(record)) == record


def test_separable_data_stops_at_the_lower_bound_and_empty_data_is_refused() -> None:
    logits = torch.eye(4).repeat(5, 1) * 3  # every row correct: NLL falls as T -> 0
    truth = torch.arange(4).repeat(5)
    fit = fit_temperature(logits, truth, CalibrationConfig(min_temperature=0.1))
    assert fit.at_bound and fit.temperature == pytest.approx(0.1, rel=1e-3)
    with pytest.raises(InputError):
        fit_temperature(torch.empty(0, 4), torch.empty(0, dtype=torch.long))
    with pytest.raises(ConfigError):
        CalibrationConfig(min_temperature=2.0, max_temperature=1.0)


def test_selective_threshold_is_the_lowest_reaching_the_target_above_the_floor() -> None:
    # Confidence 0.95 rows are right, 0.6 rows half right: 0.9 keeps only right answers.
    probs = torch.tensor([[0.95, 0.05]] * 8 + [[0.6, 0.4]] * 4)
    truth = torch.tensor([0] * 8 + [0, 1, 0, 1])
    cfg = CalibrationConfig(min_threshold=0.5, thresholds=(0.5, 0.7, 0.9, 0.99))
    assert selective_threshold(probs, truth, cfg) == 0.7  # 0.6 rows abstain, the rest right
    assert selective_threshold(probs, truth, dataclasses.replace(cfg, min_threshold=0.9)) == 0.9
    wrong = torch.ones(12, dtype=torch.long)  # never reached: the strictest candidate
    assert selective_threshold(probs, wrong, cfg) == 0.99


def test_old_configs_load_uncalibrated_and_bad_records_are_refused() -> None:
    assert temperature_of({}) == 1.0 and threshold_of({}) is None
    assert abstention_rule({}, CLASSIFY_ABSTENTION) is CLASSIFY_ABSTENTION
    rule = abstention_rule({"calibration": {"temperature": 0.5, "threshold": 0.9}},
                           CLASSIFY_ABSTENTION)  # fmt: skip
    assert rule.below == 0.9 and rule.calibrated
    assert rule.oncology_categories == CLASSIFY_ABSTENTION.oncology_categories
    assert rule.reason(0.62, ["gene"]) == (
        "unsure: top probability 0.62 is below the calibrated threshold 0.90"
    )
    assert rule.reason(0.95, ["gene"]) == ""
    for bad in ({"temperature": 0}, {"temperature": -1.0}, {"temperature": float("nan")}):
        with pytest.raises(InputError):
            temperature_of({"calibration": bad})
    with pytest.raises(InputError):
        temperature_of({"calibration": [1.0]})


# ----------------------------------------------------------------- the distilled student


def test_distill_records_the_calibration_and_predict_applies_it(tiny_models: Path) -> None:
    student = load_distilled(tiny_models / "models/student")
    record = student.config["calibration"]
    assert record["fitted_on"].startswith("en notes of validation cases")
    assert record["n_notes"] > 0 and record["nll_after"] <= record["nll_before"]
    for key in ("ece_before", "ece_after", "threshold", "abstention_rate"):
        assert 0.0 <= record[key] <= 1.0, key
    assert student.temperature == pytest.approx(record["temperature"]) and student.temperature > 0
    texts = ["Carcinoma ductal invasivo da mama, HER2 positivo.", "Adenocarcinoma do pulmão."]
    z, calibrated = student.predict(texts, "pt")
    z_raw, raw = student.predict(texts, "pt", calibrated=False)
    assert torch.equal(z, z_raw)  # the embedding path is untouched
    assert torch.allclose(calibrated, raw / student.temperature)
    assert torch.allclose(student.probabilities(raw), torch.softmax(calibrated, -1))
    assert torch.allclose(student.probabilities(raw, calibrated=False), torch.softmax(raw, -1))


def test_a_student_without_calibration_loads_with_t_1(tiny_models: Path, tmp_path: Path) -> None:
    old = tmp_path / "student"
    shutil.copytree(tiny_models / "models/student", old)
    config = json.loads((old / "config.json").read_text())
    del config["calibration"]
    (old / "config.json").write_text(json.dumps(config))
    student = load_distilled(old)
    assert student.temperature == 1.0
    _, calibrated = student.predict(["Adenocarcinoma do pulmão."], "pt")
    _, raw = student.predict(["Adenocarcinoma do pulmão."], "pt", calibrated=False)
    assert torch.equal(calibrated, raw)
    config["calibration"] = {"temperature": -2}
    (old / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="calibration"):
        load_distilled(old)


def test_classify_uses_the_stored_threshold(tiny_models: Path) -> None:
    from workbench.text_models import classify_text

    student = load_distilled(tiny_models / "models/student")
    text = "Adenocarcinoma do pulmão, EGFR mutado."

    def with_threshold(threshold: float | None):
        config = {k: v for k, v in student.config.items() if k != "calibration"}
        if threshold is not None:
            config["calibration"] = {**student.config["calibration"], "threshold": threshold}
        return dataclasses.replace(student, config=config)

    strict = classify_text(text, "pt", with_threshold(0.999999), student.lexicon)
    assert strict["abstained"]
    assert "below the calibrated threshold 1.00" in strict["abstain_reason"]
    lenient = classify_text(text, "pt", with_threshold(0.0), student.lexicon)
    assert not lenient["abstained"] and lenient["abstain_reason"] == ""
    # The probabilities shown are the calibrated ones.
    _, raw = student.predict([text], "pt", calibrated=False)
    shown = torch.tensor(list(lenient["probabilities"].values()))
    assert torch.allclose(shown, student.probabilities(raw)[0], atol=1e-4)
    # An old student: today's fixed rule on its (uncalibrated) softmax.
    old = classify_text(text, "pt", with_threshold(None), student.lexicon)
    top = max(old["probabilities"].values())
    assert old["abstained"] == (top < CLASSIFY_ABSTENTION.below)
    if old["abstained"]:
        assert "calibrated" not in old["abstain_reason"]


def test_reliability_diagram_draws_both_panels(tmp_path: Path) -> None:
    bins = [{"confidence": 0.6, "accuracy": 0.5}, {"confidence": 0.9, "accuracy": 0.95}]
    m = {"ece": 0.02, "ece_uncalibrated": 0.18, "reliability": bins,
         "reliability_uncalibrated": bins}  # fmt: skip
    report = {"languages": {"pt": m}, "english_reference": m, "temperature": 0.4}
    path = plots.reliability_diagram(report, tmp_path / "reliability.png")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000
