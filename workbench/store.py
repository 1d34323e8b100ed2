"""The SQLite store: one database file per workspace for reviews, approvals, jobs, the model
registry and the audit log.

Each service owns its tables and declares them with `Store.ensure(ddl)` (idempotent
`CREATE TABLE IF NOT EXISTS`), so features add tables without editing this module. The audit
log lives here because every service writes to it: it is append-only (triggers refuse UPDATE
and DELETE) and hash-chained, so an edited or deleted row is detected by `verify_audit()`.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import StoreError

_AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,          -- UTC ISO-8601
    actor TEXT NOT NULL,       -- user name (or 'system')
    action TEXT NOT NULL,      -- e.g. 'search', 'view_case', 'upload_vcf', 'export_summary'
    target TEXT NOT NULL,      -- what was acted on (pseudonymised where personal)
    details TEXT NOT NULL,     -- JSON object, no personal data in clear
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def _entry_hash(prev_hash: str, at: str, actor: str, action: str, target: str, details: str) -> str:
    payload = json.dumps([prev_hash, at, actor, action, target, details], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def pseudonym(value: str, salt: str) -> str:
    """A stable, non-reversible stand-in for personal data (sample names, query text)."""
    return "psn-" + hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()[:16]


class Store:
    """Thread-safe access to the workspace database (one connection per call)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ensured: set[str] = set()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open the store: {e}") from e
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction: committed on success, rolled back on error."""
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def ensure(self, ddl: str) -> None:
        """Create a feature's tables if missing (idempotent; cheap after the first call)."""
        if ddl in self._ensured:
            return
        with self._lock:
            conn = self._open()
            try:
                conn.executescript(ddl)
            finally:
                conn.close()
        self._ensured.add(ddl)

    # --- audit log ---------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str = "", **details: Any) -> AuditEntry:
        """Append one entry to the hash-chained audit log."""
        self.ensure(_AUDIT_DDL)
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        blob = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
        with self._lock, self.connect() as conn:
            row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            prev = row["hash"] if row else GENESIS_HASH
            digest = _entry_hash(prev, at, actor, action, target, blob)
            cur = conn.execute(
                "INSERT INTO audit (at, actor, action, target, details, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at, actor, action, target, blob, prev, digest),
            )
            return AuditEntry(cur.lastrowid, at, actor, action, target, details, prev, digest)

    def audit_entries(
        self, action: str | None = None, actor: str | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Most recent entries first, optionally filtered."""
        self.ensure(_AUDIT_DDL)
        sql, args = "SELECT * FROM audit WHERE 1=1", []
        if action:
            sql, args = sql + " AND action = ?", [*args, action]
        if actor:
            sql, args = sql + " AND actor = ?", [*args, actor]
        with self.connect() as conn:
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_to_entry(r) for r in rows]

    def verify_audit(self) -> int:
        """Check the whole chain; return the number of entries, raise StoreError at the first
        entry whose hash or link does not match."""
        self.ensure(_AUDIT_DDL)
        prev = GENESIS_HASH
        n = 0
        with self.connect() as conn:
            for r in conn.execute("SELECT * FROM audit ORDER BY id"):
                expected = _entry_hash(
                    prev, r["at"], r["actor"], r["action"], r["target"], r["details"]
                )
                if r["prev_hash"] != prev or r["hash"] != expected:
                    raise StoreError(f"audit log: entry {r['id']} was altered or a row is missing")
                prev = r["hash"]
                n += 1
        return n


def _to_entry(r: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        r["id"], r["at"], r["actor"], r["action"], r["target"], json.loads(r["details"]),
        r["prev_hash"], r["hash"],
    )  # fmt: skip
