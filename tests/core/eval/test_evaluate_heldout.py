"""core.eval.evaluate on the tiny teacher and student: every key, and the leak refusal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.data.schema import Case, Note
from core.errors import CohortError
from core.eval.evaluate import EvalConfig, check_held_out, evaluate, training_template_ids
from core.eval.metrics import AbstentionRule
from core.train.distill import reserved_template_ids

RULE = AbstentionRule(0.5, frozenset({"cancer_type", "gene"}))
KEYS = ("zero_shot_accuracy", "baseline_accuracy", "recall_at_10", "recall_at_10_slide",
        "recall_at_10_genomic", "alteration_f1", "sarc_accuracy", "ece", "abstention_rate",
        "accuracy_non_abstained", "alignment_accuracy")  # fmt: skip


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
        for key in ("zero_shot_accuracy", "baseline_accuracy", "alteration_f1", "ece"):
            assert 0.0 <= m[key] <= 1.0, (lang, key)
        assert m["n_notes"] == report["n_notes_per_language"] > 0
        assert m["recall_at_10"] == pytest.approx(
            (m["recall_at_10_slide"] + m["recall_at_10_genomic"]) / 2
        )
    # English through the teacher's own pipeline lands on its own embedding: top-1 is exact.
    assert report["english_reference"]["baseline"]["alignment_accuracy"] == 1.0
    assert "quantum_retention" in report and report["quantum_retention"] is None
    json.dumps(report)  # JSON-ready


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
