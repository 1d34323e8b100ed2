"""The audit page's service: filters (actor, action, date range), CSV export (audited, no
formula injection), chain verification, and the view_audit permission for every role."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from core.errors import InputError
from workbench import audit_service
from workbench.audit_service import AuditFilter
from workbench.errors import PermissionDenied, StoreError
from workbench.roles import PERMISSIONS, ROLES, User
from workbench.store import Store

ADMIN = User("root", "admin")


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "store.sqlite")
    store.audit("nadia", "sign_in", "")
    store.audit("nadia", "export_summary", "case-1", fmt="pdf")
    store.audit("oscar", "sign_in", "")
    store.audit("=cmd|'/c calc'!A1", "sign_in_failed", "", reason="unknown_user")
    return store


def test_filters_by_actor_action_and_date(store: Store) -> None:
    every = audit_service.entries(ADMIN, store, AuditFilter())
    assert [e.id for e in every] == [4, 3, 2, 1]  # most recent first
    by_actor = audit_service.entries(ADMIN, store, AuditFilter(actor="nadia"))
    assert [e.action for e in by_actor] == ["export_summary", "sign_in"]
    both = audit_service.entries(ADMIN, store, AuditFilter(actor="nadia", action="sign_in"))
    assert [e.id for e in both] == [1]
    today = date.fromisoformat(every[0].at[:10])
    assert len(audit_service.entries(ADMIN, store, AuditFilter(since=today, until=today))) == 4
    past = AuditFilter(since=date(2000, 1, 1), until=date(2000, 1, 31))
    assert audit_service.entries(ADMIN, store, past) == []
    assert len(audit_service.entries(ADMIN, store, AuditFilter(limit=2))) == 2
    with pytest.raises(InputError, match="after"):
        AuditFilter(since=date(2030, 1, 2), until=date(2030, 1, 1))
    assert audit_service.distinct(ADMIN, store, "actor")[-2:] == ["nadia", "oscar"]
    assert "export_summary" in audit_service.distinct(ADMIN, store, "action")


def test_csv_export_is_audited_and_defused(store: Store) -> None:
    data = audit_service.export_csv(ADMIN, store, AuditFilter(action="sign_in_failed"))
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert len(rows) == 1
    assert rows[0]["actor"].startswith("'=")  # a spreadsheet shows it as text, never runs it
    assert '"reason": "unknown_user"' in rows[0]["details"]
    last = store.audit_entries(limit=1)[0]
    assert (last.actor, last.action, last.details["rows"]) == ("root", "export_audit", 1)
    assert last.details["filter_action"] == "sign_in_failed"
    assert audit_service.verify(ADMIN, store) == 5


def test_verify_names_the_edited_entry(store: Store) -> None:
    with sqlite3.connect(store.path) as conn:  # someone with file access bypasses the trigger
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET actor = 'someone-else' WHERE id = 3")
    with pytest.raises(StoreError, match="entry 3"):
        audit_service.verify(ADMIN, store)


def test_empty_store_has_no_entries(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty.sqlite")
    assert audit_service.entries(ADMIN, store, AuditFilter()) == []
    assert audit_service.distinct(ADMIN, store, "action") == []


@pytest.mark.parametrize("role", ROLES)
def test_every_call_needs_view_audit(role: str, store: Store) -> None:
    user = User("u", role)
    calls = (
        lambda: audit_service.entries(user, store, AuditFilter()),
        lambda: audit_service.export_csv(user, store, AuditFilter()),
        lambda: audit_service.distinct(user, store, "actor"),
        lambda: audit_service.verify(user, store),
    )
    for call in calls:
        if role in PERMISSIONS["view_audit"]:
            call()
        else:
            with pytest.raises(PermissionDenied):
                call()
