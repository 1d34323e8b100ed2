"""Workspace status: tolerant of absent and broken parts, cheap to call repeatedly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.data.schema import Case, Note
from workbench import status as status_mod
from workbench.status import COMPONENTS, IndexInfo, ModelInfo, workspace_status
from workbench.workspace import Workspace


def make_case(case_id: str, cancer_type: str, split: str, stage: str, langs: str, **kw) -> Case:
    # One clinic note per language in `langs` (space-separated codes).
    notes = tuple(
        Note(lang, "clinic_note", f"{lang}/clinic_note/00", "...") for lang in langs.split()
    )
    return Case(case_id, cancer_type, cancer_type, "", stage, 2, 60, "F", split, notes=notes, **kw)


CASES = (
    make_case("C1", "BRCA", "train", "II", "en pt sw", tile_paths=("tiles/C1_0.jpg",)),
    make_case("C2", "BRCA", "val", "", "en hi", vcf_path="vcf/C2.vcf.gz"),
    make_case("C3", "LUAD", "test", "IV", "en", tile_paths=("tiles/C3_0.jpg",), vcf_path="v.vcf"),
)


def write_cases(ws: Workspace, cases: tuple[Case, ...]) -> None:
    ws.cohort_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(c.to_dict()) for c in cases]
    (ws.cohort_dir / "cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "workspace")


def test_empty_workspace_reports_everything_missing(ws: Workspace) -> None:
    st = workspace_status(ws)  # the root folder does not even exist
    assert not st.cohort_present and st.cohort_stats is None and st.cohort_error == ""
    assert st.models == () and st.index is None
    assert not st.db_present and st.db_size_bytes == 0
    assert st.missing == COMPONENTS


def test_tiny_cohort_stats(ws: Workspace) -> None:
    write_cases(ws, CASES)
    st = workspace_status(ws)
    assert st.cohort_present and st.cohort_error == ""
    stats = st.cohort_stats
    assert stats["n_cases"] == 3
    assert dict(stats["by_type"]) == {"BRCA": 2, "LUAD": 1}
    assert dict(stats["by_type_split"]["BRCA"]) == {"train": 1, "val": 1}
    assert dict(stats["notes_by_language"]) == {"en": 3, "pt": 1, "sw": 1, "hi": 1}
    assert dict(stats["by_modality"]) == {"slide": 2, "genomic": 2, "note": 3}
    assert dict(stats["by_type_modality"]["LUAD"]) == {"slide": 1, "genomic": 1, "note": 1}
    # app_pages/home.py relies on the "unknown" bucket for cases without a stage.
    assert dict(stats["by_stage"]) == {"II": 1, "IV": 1, "unknown": 1}
    assert st.missing == ("models", "index")


def test_cached_stats_are_read_only(ws: Workspace) -> None:
    write_cases(ws, CASES)
    stats = workspace_status(ws).cohort_stats
    with pytest.raises(TypeError):
        stats["by_type"]["BRCA"] = 99  # would corrupt what every later caller sees
    assert workspace_status(ws).cohort_stats["by_type"]["BRCA"] == 2


def test_cohort_is_read_once_until_the_file_changes(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_load = status_mod.load_cases
    monkeypatch.setattr(status_mod, "load_cases", lambda d: calls.append(d) or real_load(d))
    status_mod._cached_cohort_stats.cache_clear()
    write_cases(ws, CASES)
    for _ in range(3):
        assert workspace_status(ws).cohort_stats["n_cases"] == 3
    assert len(calls) == 1

    write_cases(ws, CASES[:1])
    cases_file = ws.cohort_dir / "cases.jsonl"
    os.utime(cases_file, ns=(1, 1))  # a different mtime even on coarse-grained filesystems
    assert workspace_status(ws).cohort_stats["n_cases"] == 1
    assert len(calls) == 2


def test_unreadable_cohort_is_reported_not_raised(ws: Workspace) -> None:
    ws.cohort_dir.mkdir(parents=True)
    (ws.cohort_dir / "cases.jsonl").write_text('{"case_id": "C1"}\n', encoding="utf-8")
    st = workspace_status(ws)
    assert st.cohort_present and st.cohort_stats is None
    assert "line 1" in st.cohort_error
    assert "cohort" in st.missing


def test_models_index_and_database(ws: Workspace) -> None:
    created = "2026-11-27T10:00:00+00:00"
    write_json(ws.models_dir / "teacher-v1" / "config.json",
               {"kind": "teacher", "version": "v1", "created_at": created, "dim": 256})  # fmt: skip
    write_json(ws.models_dir / "student-pt" / "config.json", {"kind": "student"})
    (ws.models_dir / "broken").mkdir()
    (ws.models_dir / "broken" / "config.json").write_text("{oops", encoding="utf-8")
    (ws.models_dir / "no-config").mkdir()  # an interrupted run: not a model
    write_json(ws.index_dir / "meta.json",
               {"teacher_version": "v1", "n_vectors": 1234, "index_type": "flat"})  # fmt: skip
    ws.db_path.write_bytes(b"x" * 2048)

    st = workspace_status(ws)
    assert st.models == (
        ModelInfo("broken", "", "", "", readable=False),
        ModelInfo("student-pt", "student", "", "", readable=True),
        ModelInfo("teacher-v1", "teacher", "v1", created, readable=True),
    )
    assert st.index == IndexInfo("v1", 1234, "flat", readable=True)
    assert st.db_present and st.db_size_bytes == 2048
    assert st.missing == ("cohort",)


@pytest.mark.parametrize(
    "meta",
    [
        {"teacher_version": "v1", "n_vectors": "many", "index_type": "flat"},
        {"teacher_version": "v1", "n_vectors": True, "index_type": "flat"},
        {"n_vectors": 10, "index_type": "flat"},
        ["not", "an", "object"],
    ],
)
def test_bad_index_metadata_is_unreadable(ws: Workspace, meta: object) -> None:
    write_json(ws.index_dir / "meta.json", meta)
    st = workspace_status(ws)
    assert st.index is not None and not st.index.readable and st.index.n_vectors == 0
    assert "index" in st.missing
