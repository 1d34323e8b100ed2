"""The model registry: versions, adoption of a demo-built student, atomic promotion,
rollback as a stack, permissions, and the held-out comparison."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.errors import InputError
from workbench.errors import PermissionDenied
from workbench.registry import RUN_FILE, Registry, heldout_scores, production_version
from workbench.roles import User
from workbench.store import Store
from workbench.workspace import Workspace

ADMIN = User("ada", "admin")


def fake_student(folder: Path, version: str, created: str = "2026-01-01T00:00:00+00:00") -> Path:
    """A folder that looks like a distillation output (config.json is all the registry reads)."""
    folder.mkdir(parents=True)
    config = {
        "kind": "student",
        "version": version,
        "created_at": created,
        "languages": ["en", "pt"],
        "metrics": {"pt": {"accuracy": 0.5}},
        "distill": {},
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def add_version(ws: Workspace, version: str, status: str = "succeeded", day: int = 2) -> str:
    folder = fake_student(ws.models_dir / "runs" / version, version,
                          f"2026-01-{day:02d}T00:00:00+00:00")  # fmt: skip
    heldout = {"pt": {"accuracy": 0.25 * day % 1, "recall_at_10": 0.5}}
    run = {"version": version, "status": status, "user": "ada", "languages": ["en", "pt"],
           "created_at": f"2026-01-{day:02d}T00:00:00+00:00", "job_id": day,
           "metrics": {"heldout": heldout}}  # fmt: skip
    (folder / RUN_FILE).write_text(json.dumps(run))
    return version


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    fake_student(ws.models_dir / "student", "student-demo")  # as `cmkd demo` leaves it
    return ws


def test_first_promotion_adopts_the_demo_student_and_swaps_a_link(ws: Workspace) -> None:
    registry = Registry(ws)
    assert production_version(ws) == "student-demo" and registry.versions(ADMIN) == []
    add_version(ws, "v1")
    assert [v.version for v in registry.versions(ADMIN)] == ["v1"]

    assert registry.promote(ADMIN, "v1") == "student-demo"
    link = ws.models_dir / "student"
    assert link.is_symlink() and os.readlink(link) == "runs/v1"  # relative: the workspace moves
    assert production_version(ws) == "v1"
    adopted = registry.show(ADMIN, "student-demo")
    assert adopted["status"] == "adopted" and not adopted["production"]
    assert json.loads((ws.models_dir / "runs/student-demo/config.json").read_text())["version"] == (
        "student-demo"
    )  # the demo folder was moved in, not lost
    infos = {v.version: v for v in registry.versions(ADMIN)}
    assert infos["v1"].production and not infos["student-demo"].production
    assert not [p for p in ws.models_dir.iterdir() if p.name.startswith(".")]  # no temp link
    entries = Store(ws.db_path).audit_entries(action="promote_model")
    assert entries[0].target == "v1" and entries[0].details["previous"] == "student-demo"


def test_a_student_linked_from_elsewhere_is_copied_not_moved(tmp_path: Path) -> None:
    elsewhere = fake_student(tmp_path / "shared" / "student", "student-shared")
    ws = Workspace(tmp_path / "ws")
    ws.models_dir.mkdir(parents=True)
    (ws.models_dir / "student").symlink_to(elsewhere, target_is_directory=True)
    add_version(ws, "v1")
    Registry(ws).promote(ADMIN, "v1")
    assert (elsewhere / "config.json").is_file()  # the shared student is left alone
    assert (ws.models_dir / "runs/student-shared/config.json").is_file()
    assert Registry(ws).rollback(ADMIN) == "student-shared"
    assert (ws.models_dir / "student").resolve() == (ws.models_dir / "runs/student-shared")


def test_rollback_undoes_promotions_in_order(ws: Workspace) -> None:
    registry = Registry(ws)
    for day, v in enumerate(("v1", "v2", "v3"), start=2):
        add_version(ws, v, day=day)
        registry.promote(ADMIN, v)
    assert registry.rollback(ADMIN) == "v2"
    assert registry.rollback(ADMIN) == "v1"
    registry.promote(ADMIN, "v3")
    assert registry.rollback(ADMIN) == "v1"  # undoes the last promotion, not a toggle
    assert registry.rollback(ADMIN) == "student-demo"
    with pytest.raises(InputError, match="no earlier production version"):
        registry.rollback(ADMIN)
    registry.promote(ADMIN, "v3")
    with pytest.raises(InputError, match="not an earlier production version"):
        registry.rollback(ADMIN, to="v2")  # v2 is not below v3 on the stack now
    assert registry.rollback(ADMIN, to="student-demo") == "student-demo"
    assert [h.action for h in registry.history(ADMIN)][:2] == ["adopt", "promote"]
    assert production_version(ws) == "student-demo"


def test_refusals(ws: Workspace) -> None:
    registry = Registry(ws)
    add_version(ws, "v1")
    add_version(ws, "broken", status="failed")
    (ws.models_dir / "runs" / ".v9.tmp-123").mkdir()  # a run being written
    fake_student(ws.models_dir / "runs" / "v8", "v8")  # distilled, not yet registered
    assert {v.version for v in registry.versions(ADMIN)} == {"v1", "broken"}
    for bad in ("v8", "missing", "../student", ".v9.tmp-123", ""):
        with pytest.raises(InputError):
            registry.promote(ADMIN, bad)
    with pytest.raises(InputError, match="not promotable"):
        registry.promote(ADMIN, "broken")
    registry.promote(ADMIN, "v1")
    with pytest.raises(InputError, match="already production"):
        registry.promote(ADMIN, "v1")
    for role in ("nurse", "oncologist", "reviewer"):
        user = User("x", role)
        for call in (lambda u: registry.versions(u), lambda u: registry.promote(u, "v1"),
                     lambda u: registry.rollback(u), lambda u: registry.show(u, "v1")):  # fmt: skip
            with pytest.raises(PermissionDenied):
                call(user)
    with pytest.raises(PermissionDenied):
        registry.versions(None)


def test_no_student_means_no_production(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "empty")
    assert production_version(ws) is None
    add_version(ws, "v1")
    assert Registry(ws).promote(ADMIN, "v1") is None
    with pytest.raises(InputError):
        Registry(ws).rollback(ADMIN)


def test_heldout_scores_are_per_language_and_deterministic(tiny_models: Path) -> None:
    args = (tiny_models / "models/student", tiny_models / "cohort", tiny_models / "models/teacher")
    first = heldout_scores(*args, ("en", "pt", "hi"), per_language=16)
    assert set(first) == {"en", "pt", "hi"}
    for m in first.values():
        assert set(m) == {"accuracy", "recall_at_10"} and all(0 <= v <= 1 for v in m.values())
    assert heldout_scores(*args, ("en", "pt", "hi"), per_language=16) == first
    with pytest.raises(InputError, match="no test-split notes"):
        heldout_scores(*args, ("xx",))
