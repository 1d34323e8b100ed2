"""core.eval.evaluate on the tiny teacher and student: every key, and the leak refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.data.cohort import load_cases
from core.data.schema import Case, Note
from core.errors import CohortError
from core.eval.evaluate import (
    EvalConfig,
    _load_teacher_side,
    check_held_out,
    evaluate,
    select_test_notes,
    training_template_ids,
)
from core.eval.metrics import AbstentionRule, micro_f1
from core.train.distill import GENES_FILE, load_distilled, reserved_template_ids

RULE = AbstentionRule(0.5, frozenset({"cancer_type", "gene"}))
KEYS = ("zero_shot_accuracy", "baseline_accuracy", "recall_at_10", "recall_at_10_slide",
        "recall_at_10_genomic", "alteration_f1", "sarc_accuracy", "ece", "ece_uncalibrated",
        "abstention_rate", "accuracy_non_abstained", "abstention_rate_uncalibrated",
        "accuracy_non_abstained_uncalibrated", "abstention_threshold", "alignment_accuracy",
        "reliability", "reliability_uncalibrated")  # fmt: skip


@pytest.fixture(scope="module")
def report(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    cache = tmp_path_factory.mktemp("eval-cache")
    return evaluate(
        tiny_models / "cohort", tiny_models / "models/teacher", tiny_models / "models/student",
        EvalConfig(RULE), cache_dir=cache,
    )  # fmt: skip


def test_every_student_language_has_every_metric(report: dict) -> None:
    assert set(report["languages"]) == {"pt", "hi"}  # the tiny student's languages
    for lang, m in report["languages"].items():
        for key in KEYS:
            assert key in m, (lang, key)
        for key in ("zero_shot_accuracy", "baseline_accuracy", "alteration_f1", "ece",
                    "ece_uncalibrated"):  # fmt: skip
            assert 0.0 <= m[key] <= 1.0, (lang, key)
        # The student's calibrated threshold (recorded by distill), not the rule passed in.
        assert m["abstention_threshold"] == report["abstention_threshold"]
        assert m["n_notes"] == report["n_notes_per_language"] > 0
        assert m["recall_at_10"] == pytest.approx(
            (m["recall_at_10_slide"] + m["recall_at_10_genomic"]) / 2
        )
    # English through the teacher's own pipeline lands on its own embedding: top-1 is exact.
    assert report["english_reference"]["baseline"]["alignment_accuracy"] == 1.0
    assert "quantum_retention" in report and report["quantum_retention"] is None
    assert report["abstention_calibrated"] and report["temperature"] > 0
    assert report["abstention_threshold"] == report["calibration"]["threshold"]
    json.dumps(report)  # JSON-ready


def test_ceilings_of_recall_are_reported(report: dict) -> None:
    ceilings = report["ceilings"]
    slide = ceilings["slide_recall_at_10_type_subtype_grade_histology"]
    genomic = ceilings["genomic_recall_at_10_driver_variants_tmb"]
    assert 0.0 < slide <= 1.0 and 0.0 < genomic <= 1.0
    assert ceilings["recall_at_10"] == pytest.approx((slide + genomic) / 2)
    # A reader of what each note states leaves more tied than one that knows every fact.
    stated_slide = ceilings["slide_recall_at_10_as_english_notes_state"]
    stated_genomic = ceilings["genomic_recall_at_10_as_english_notes_state"]
    assert 0.0 < stated_slide <= slide and 0.0 < stated_genomic <= genomic
    assert ceilings["recall_at_10_as_english_notes_state"] == pytest.approx(
        (stated_slide + stated_genomic) / 2
    )


def test_alteration_f1_comes_from_the_gene_head_with_the_probe_beside_it(
    tiny_models: Path, report: dict, tmp_path: Path
) -> None:
    student = load_distilled(tiny_models / "models/student")
    assert report["gene_head_threshold"] == student.gene_threshold is not None
    notes = select_test_notes(
        load_cases(tiny_models / "cohort"), _load_teacher_side(tiny_models / "models/teacher"),
        ["pt", "hi", "en"], reserved_template_ids(["pt", "hi", "en"]), 0, 0,
    )  # fmt: skip
    for lang, m in {**report["languages"], "en": report["english_reference"]}.items():
        assert m["alteration_source"] == "gene_head"
        _, _, probs = student.predict_with_genes(notes.texts[lang], lang)
        expected = micro_f1(probs >= student.gene_threshold, notes.drivers)
        assert m["alteration_f1"] == pytest.approx(expected)
        assert 0.0 <= m["alteration_f1_probe"] <= 1.0 and 0.0 <= m["driver_genes_named"] <= 1.0
        assert m["baseline"]["alteration_f1"] == m["baseline"]["alteration_f1_probe"]

    # A student saved without a gene head still evaluates: the probe is then alteration_f1.
    plain = tmp_path / "student"
    shutil.copytree(tiny_models / "models/student", plain)
    (plain / GENES_FILE).unlink()
    config = json.loads((plain / "config.json").read_text())
    del config["gene_head"]
    (plain / "config.json").write_text(json.dumps(config))
    old = evaluate(tiny_models / "cohort", tiny_models / "models/teacher", plain,
                   EvalConfig(RULE, limit=4))  # fmt: skip
    assert old["gene_head_threshold"] is None
    for m in old["languages"].values():
        assert m["alteration_source"] == "probe"
        assert m["alteration_f1"] == m["alteration_f1_probe"]


def test_refuses_a_student_that_trained_on_a_test_template(
    tiny_models: Path, tmp_path: Path
) -> None:
    student = tmp_path / "student"
    shutil.copytree(tiny_models / "models/student", student)
    config = json.loads((student / "config.json").read_text())
    assert config["train_template_ids"]  # distill records what it trained on
    leaked = sorted(reserved_template_ids(["hi"]))[0]
    config["train_template_ids"].append(leaked)
    (student / "config.json").write_text(json.dumps(config))
    with pytest.raises(CohortError, match=f"evaluation refused.*{leaked}"):
        evaluate(tiny_models / "cohort", tiny_models / "models/teacher", student,
                 EvalConfig(RULE))  # fmt: skip


def test_students_without_a_record_are_checked_against_the_cohort() -> None:
    test_template = sorted(reserved_template_ids(["pt"]))[0]

    def case(split: str, template: str) -> Case:
        note = Note("pt", "clinic_note", template, "texto")
        return Case("c", "BRCA", "BRCA", "BRCA_LUMA", "I", 1, 50, "F", split, notes=(note,))

    config = {"languages": ["en", "pt"]}
    held_out = reserved_template_ids(["en", "pt"])
    clean = [case("train", "pt/clinic_note/01"), case("test", test_template)]
    check_held_out(training_template_ids(config, clean), held_out)
    leaky = [case("train", test_template)]
    with pytest.raises(CohortError, match=test_template):
        check_held_out(training_template_ids(config, leaky), held_out)
