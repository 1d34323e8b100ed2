"""`cmkd runs list|show|promote|rollback`, human and --json output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_registry import add_version, fake_student

from workbench.cli import main
from workbench.registry import production_version
from workbench.store import Store
from workbench.workspace import Workspace


@pytest.fixture()
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    fake_student(ws.models_dir / "student", "student-demo")
    add_version(ws, "v1", day=2)
    add_version(ws, "v2", day=3)
    monkeypatch.setenv("CMKD_WORKSPACE", str(ws.root))
    return ws


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_show_promote_rollback_as_json(ws: Workspace, capsys) -> None:
    code, out, _ = run(capsys, "runs", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["production"] == "student-demo"
    assert [v["version"] for v in listed["versions"]] == ["v2", "v1"]  # newest first

    code, out, _ = run(capsys, "runs", "promote", "v1", "--json")
    assert code == 0 and json.loads(out) == {"production": "v1", "previous": "student-demo"}
    code, out, _ = run(capsys, "runs", "show", "v1", "--json")
    assert code == 0 and json.loads(out)["production"] is True
    code, out, _ = run(capsys, "runs", "promote", "v2", "--json")
    code, out, _ = run(capsys, "runs", "rollback", "--json")
    assert code == 0 and json.loads(out) == {"production": "v1", "previous": "v2"}
    code, out, _ = run(capsys, "runs", "rollback", "--to", "student-demo", "--json")
    assert code == 0 and production_version(ws) == "student-demo"
    actors = {e.actor for e in Store(ws.db_path).audit_entries(action="promote_model")}
    assert len(actors) == 1 and actors.pop().startswith("cli:")


def test_human_output(ws: Workspace, capsys) -> None:
    run(capsys, "runs", "promote", "v2")
    code, out, _ = run(capsys, "runs", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "production: v2"
    assert any(line.startswith("* v2") for line in lines)
    assert any(line.startswith("  student-demo") for line in lines)
    code, out, _ = run(capsys, "runs", "show", "v2")
    assert code == 0 and "version: v2 (production)" in out and "languages: en, pt" in out


def test_invalid_input_exits_2_with_one_error_line(ws: Workspace, capsys) -> None:
    for argv in (("runs", "show", "nope"), ("runs", "promote", "nope"), ("runs", "rollback")):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == "", argv
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert production_version(ws) == "student-demo"
