"""The `cmkd` console script: exit codes, JSON output, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import DEMO_BUDGET_S, MIN_STAGE_MINUTES, _demo_minutes, main


def test_cohort_stats_json(tiny_cohort: Path, capsys) -> None:
    assert main(["cohort", "stats", "--cohort", str(tiny_cohort), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_cases"] == 48 and set(stats) >= {"by_type", "by_split", "notes_by_language"}


def test_cohort_stats_without_cohort_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["cohort", "stats", "--cohort", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_import_errors_exit_2_one_line_each(tmp_path: Path, capsys) -> None:
    m = tmp_path / "m.csv"
    m.write_text("case_id,label\nA,NOPE\nB,ALSO\n")
    assert main(["cohort", "import", str(m), "--cohort", str(tmp_path / "c")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error: m.csv: row 2: label 'NOPE' is not one of " + lines[0].split("one of ")[1],
        "error: m.csv: row 3: label 'ALSO' is not one of " + lines[1].split("one of ")[1],
    ]


def test_console_script_generates_a_cohort(tmp_path: Path) -> None:
    out = tmp_path / "c"
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "cohort", "generate", "--cases", "5", "--seed", "1",
         "--out", str(out), "--workers", "1", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["n_cases"] == 5
    assert (out / "cases.jsonl").exists()


def test_demo_builds_cohort_teacher_index_and_student_once(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from core.models.student import StudentConfig
    from core.train import distill as distillation
    from core.train import teacher as teacher_training

    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "ws"))
    tiny = teacher_training.TeacherTrainConfig.from_dict({"epochs": 1, "max_minutes": 0.5})
    monkeypatch.setattr(teacher_training, "TeacherTrainConfig", lambda: tiny)
    tiny_student = distillation.DistillConfig(
        languages=("pt",), init_from_minilm=False, init_from_teacher=False, epochs=1,
        student=StudentConfig(hidden=32, n_heads=2, ffn=64, n_layers=2, init_layers=(0, 1)),
        notes_per_epoch=16, batch_size=8, max_length=48, parallel_rows=8, extra_vocab=100,
        val_per_language=4, eval_batch_size=16, show_progress_bar=False, threads=1,
    )  # fmt: skip
    monkeypatch.setattr(distillation, "DistillConfig", lambda: tiny_student)
    assert main(["demo", "--cases", "30"]) == 0
    assert (tmp_path / "ws/models/teacher/embeddings.safetensors").exists()
    assert (tmp_path / "ws/index/meta.json").exists()
    assert (tmp_path / "ws/models/student/config.json").exists()
    capsys.readouterr()
    assert main(["demo", "--cases", "30"]) == 0, "a second run is a no-op"
    err = capsys.readouterr().err
    for part in ("cohort", "teacher", "index", "student"):
        assert f"{part}: present" in err


def test_demo_stages_share_what_is_left_of_the_ten_minutes() -> None:
    now = time.monotonic()
    assert _demo_minutes(now, 0.0, 5.0) == 5.0  # early: the config's own cap
    late = now - (DEMO_BUDGET_S - 180.0)  # three minutes left
    assert _demo_minutes(late, 60.0, 5.0) == pytest.approx(2.0, abs=0.01)
    assert _demo_minutes(now - DEMO_BUDGET_S, 0.0, 5.0) == MIN_STAGE_MINUTES  # past the budget
