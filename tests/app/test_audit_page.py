"""AppTest of the audit page (and the users page): chain state, filters, audited CSV export,
and refusal for roles without the permission."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog
from workbench.roles import User
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[2]
AUDIT_PAGE = str(ROOT / "app_pages" / "audit.py")
USERS_PAGE = str(ROOT / "app_pages" / "users.py")
TIMEOUT_S = 30
EN = catalog("en")


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "ws"))
    store = Store(tmp_path / "ws" / "store.sqlite")
    store.audit("nadia", "sign_in", "", method="password")
    store.audit("oscar", "sign_in", "", method="password")
    store.audit("oscar", "export_summary", "case-7", fmt="pdf")
    return store


def page(path: str, user: User) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT_S)
    at.session_state["user"] = user
    return run(at)


def run(target: AppTest | object) -> AppTest:
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


def test_browse_filter_and_export(store: Store) -> None:
    at = page(AUDIT_PAGE, User("root", "admin"))
    assert at.title[0].value == EN["audit.title"]
    assert at.success[0].value == EN["audit.chain_ok"].format(n=3)
    assert [r[EN["audit.col_action"]] for r in table(at)] == [
        "export_summary", "sign_in", "sign_in",
    ]  # fmt: skip
    assert table(at)[0][EN["audit.col_details"]] == "fmt=pdf"

    at = run(at.selectbox(key="audit.actor").set_value("oscar"))
    at = run(at.selectbox(key="audit.action").set_value("sign_in"))
    assert [r[EN["audit.col_actor"]] for r in table(at)] == ["oscar"]
    # Date bounds: AppTest cannot set a date_input created empty (value=None); the service
    # tests cover the date filter.
    assert [d.value for d in at.date_input] == [None, None]

    assert not at.get("download_button")  # the export is prepared (and audited) on request
    at = run(at.button(key="audit.prepare").click())
    assert at.get("download_button")
    prepared = at.session_state["audit.export_data"][1].decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(prepared)))
    assert [(r["actor"], r["action"]) for r in rows] == [("oscar", "sign_in")]
    last = store.audit_entries(limit=1)[0]
    assert (last.actor, last.action, last.details["rows"]) == ("root", "export_audit", 1)


def test_a_broken_chain_is_shown(store: Store) -> None:
    with sqlite3.connect(store.path) as conn:
        conn.execute("DROP TRIGGER audit_no_delete")
        conn.execute("DELETE FROM audit WHERE id = 2")
    at = page(AUDIT_PAGE, User("root", "admin"))
    assert "entry 3" in at.error[0].value


@pytest.mark.parametrize("role", ["oncologist", "genetic_counsellor", "nurse", "reviewer"])
def test_other_roles_are_refused(store: Store, role: str) -> None:
    for path, key in ((AUDIT_PAGE, "audit.not_allowed"), (USERS_PAGE, "users.not_allowed")):
        at = page(path, User("someone", role))
        assert [w.value for w in at.warning] == [EN[key]]
        assert not at.dataframe and not at.get("download_button") and not at.button


def test_users_page_adds_disables_and_resets(store: Store) -> None:
    at = page(USERS_PAGE, User("root", "admin"))
    assert at.dataframe[0].value.empty
    at.text_input(key="users.name").input("Nadia")
    at.selectbox(key="users.role").set_value("nurse")
    at = run(at.button(key=f"FormSubmitter:users.add-{EN['users.add']}").click())
    shown = at.success[0].value
    assert shown.startswith("One-time password for nadia: `")
    names = table(at)
    assert [(r[EN["users.col_name"]], r[EN["users.col_role"]]) for r in names] == [
        ("nadia", EN["auth.role.nurse"])
    ]
    at = run(at.button(key="users.toggle").click())
    assert table(at)[0][EN["users.col_state"]] == EN["users.state_disabled"]
    at = run(at.button(key="users.reset").click())
    assert at.success[0].value != shown  # a new one-time password
    actions = [e.action for e in store.audit_entries(actor="root")]
    assert actions[:3] == ["reset_password", "disable_user", "create_user"]
