"""`cmkd evaluate` over the tiny teacher and student: the --json shape and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.train.distill import reserved_template_ids
from workbench.cli import main

REQUIRED = ("zero_shot_accuracy", "baseline_accuracy", "recall_at_10", "alteration_f1")


def test_json_maps_each_student_language_to_its_metrics(built_workspace: Path, capsys) -> None:
    assert main(["evaluate", "--json", "--limit", "4"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # one object, nothing else on stdout
    assert set(report["languages"]) == {"pt", "hi"}
    for metrics in report["languages"].values():
        assert all(isinstance(metrics[key], float) for key in REQUIRED)
    assert "quantum_retention" in report
    assert report["n_test_cases"] <= 4
    assert "evaluate:" in captured.err  # progress goes to stderr


def test_leaky_student_and_bad_limit_exit_2(built_workspace: Path, tmp_path: Path, capsys) -> None:
    student = tmp_path / "leaky"
    shutil.copytree(built_workspace / "models/student", student)
    config = json.loads((student / "config.json").read_text())
    config["train_template_ids"] = sorted(reserved_template_ids(["pt"]))[:2]
    (student / "config.json").write_text(json.dumps(config))
    for argv in (["evaluate", "--student", str(student)], ["evaluate", "--limit", "-1"]):
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
        assert len(err) == 1
    assert main(["evaluate", "--student", str(student), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "evaluation refused" in captured.err
