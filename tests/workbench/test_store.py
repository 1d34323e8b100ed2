"""The store: feature tables, and the append-only hash-chained audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workbench.errors import StoreError
from workbench.store import Store, pseudonym


def test_audit_chain_verifies_and_detects_tampering(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    for i in range(5):
        store.audit("alice", "search", f"q{i}", lang="pt")
    assert store.verify_audit() == 5
    assert [e.target for e in store.audit_entries(limit=2)] == ["q4", "q3"]
    assert store.audit_entries(action="search", actor="bob") == []

    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET target = 'x' WHERE id = 2")
        # An attacker with file access drops the trigger and edits a row: the chain catches it.
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute('UPDATE audit SET details = \'{"lang": "en"}\' WHERE id = 3')
    with pytest.raises(StoreError, match="entry 3"):
        store.verify_audit()


def test_feature_tables_are_created_once_and_rollback_on_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    ddl = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"
    store.ensure(ddl)
    store.ensure(ddl)
    with pytest.raises(RuntimeError):
        with store.connect() as conn:
            conn.execute("INSERT INTO notes (text) VALUES ('kept?')")
            raise RuntimeError("crash mid-transaction")
    with store.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0


def test_pseudonyms_are_stable_and_salted() -> None:
    assert pseudonym("TUMOR_PATIENT_7", "s1") == pseudonym("TUMOR_PATIENT_7", "s1")
    assert pseudonym("TUMOR_PATIENT_7", "s1") != pseudonym("TUMOR_PATIENT_7", "s2")
    assert "TUMOR" not in pseudonym("TUMOR_PATIENT_7", "s1")
