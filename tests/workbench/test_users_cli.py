"""`cmkd user add|list|disable|enable|reset` and `cmkd audit verify|list|export`: output,
exit codes, first-run admin on stderr, and a tampered audit chain."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from workbench import auth as auth_module
from workbench import cli
from workbench.auth import AuthService
from workbench.store import Store


@pytest.fixture()
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("CMKD_WORKSPACE", str(root))
    # The CLI hashes at the production cost (0.3 s a hash here); tests need speed, not cost.
    real = auth_module.hash_password
    monkeypatch.setattr(auth_module, "hash_password", lambda password, rounds: real(password, 4))
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_user_commands(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "user", "add", "Nadia", "--role", "nurse", "--json")
    assert code == 0
    assert "created the account 'admin'" in err  # first run: the admin's password on stderr
    issued = json.loads(out)
    assert issued["name"] == "nadia" and len(issued["one_time_password"]) >= 12
    auth = AuthService.from_workspace(cli.Workspace(ws))
    assert auth.sign_in("nadia", issued["one_time_password"]).outcome == "must_change"

    code, out, err = run(capsys, "user", "list")
    assert code == 0 and "created the account" not in err  # only on the first run
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert rows["admin"][1:3] == ["admin", "new"] and rows["nadia"][1:3] == ["nurse", "new"]

    assert run(capsys, "user", "disable", "nadia")[0] == 0
    code, out, _ = run(capsys, "user", "list", "--json")
    assert {a["name"]: a["disabled"] for a in json.loads(out)} == {"admin": False, "nadia": True}
    assert run(capsys, "user", "enable", "nadia")[0] == 0

    code, out, _ = run(capsys, "user", "reset", "nadia")
    otp = out.split(": ", 1)[1].split()[0]
    assert code == 0 and auth.sign_in("nadia", otp).outcome == "must_change"

    for argv in (("user", "reset", "ghost"), ("user", "add", "nadia", "--role", "nurse")):
        code, out, err = run(capsys, *argv)
        assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:  # argparse refuses an unknown role
        cli.main(["user", "add", "x", "--role", "surgeon"])
    assert exc.value.code == 2


def test_audit_commands_and_a_tampered_chain(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "user", "add", "oscar", "--role", "oncologist")
    code, out, _ = run(capsys, "audit", "verify")
    assert (code, out.strip()) == (0, "audit chain intact: 2 entries")

    code, out, _ = run(capsys, "audit", "list", "--action", "create_user", "--json")
    assert [e["target"] for e in json.loads(out)] == ["oscar", "admin"]
    code, out, _ = run(capsys, "audit", "list", "--since", "2000-01-01", "--until", "2000-12-31")
    assert code == 0 and out == ""
    code, _, err = run(capsys, "audit", "list", "--since", "2030-01-02", "--until", "2030-01-01")
    assert code == 2 and "after" in err

    target = ws.parent / "audit.csv"
    assert run(capsys, "audit", "export", "--actor", "system", "--out", str(target))[0] == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [(r["actor"], r["target"]) for r in rows] == [("system", "admin")]
    last = Store(ws / "store.sqlite").audit_entries(limit=1)[0]
    assert last.action == "export_audit" and last.details["rows"] == 1  # the export is audited

    with sqlite3.connect(ws / "store.sqlite") as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET target = 'mallory' WHERE id = 2")
    code, out, err = run(capsys, "audit", "verify")
    assert code == 2 and out == ""
    assert err.strip() == "error: audit log: entry 2 was altered or a row is missing"
