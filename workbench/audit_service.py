"""Browsing the audit log: filter by actor, action and date range, export CSV, verify the chain.

Everything needs the `view_audit` permission; an export is itself audited (with its filter
and row count). The log holds pseudonyms where personal data would be, so an export carries
no query text or sample name either.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from core.errors import InputError
from workbench.roles import User, require
from workbench.store import AuditEntry, Store

CSV_COLUMNS: tuple[str, ...] = ("id", "at", "actor", "action", "target", "details", "hash")
_FORMULA_START = ("=", "+", "@", "\t", "\r")  # a spreadsheet would evaluate these cells


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None  # exact actor name or pseudonym
    action: str | None = None  # exact action, e.g. "sign_in"
    since: date | None = None  # first day included (UTC)
    until: date | None = None  # last day included (UTC)
    limit: int = 1000  # most recent entries first

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise InputError(f"date range: {self.since} is after {self.until}")
        if self.limit < 1:
            raise InputError(f"limit must be positive, got {self.limit}")

    def where(self) -> tuple[str, list[Any]]:
        clauses, args = [], []
        for column, value in (("actor", self.actor), ("action", self.action)):
            if value:
                clauses.append(f"{column} = ?")
                args.append(value)
        # `at` is UTC ISO-8601 text, so day bounds compare as strings.
        if self.since:
            clauses.append("at >= ?")
            args.append(self.since.isoformat())
        if self.until:
            clauses.append("at < ?")
            args.append((self.until + timedelta(days=1)).isoformat())
        return " AND ".join(clauses) or "1=1", args


def _has_log(store: Store) -> bool:
    with store.connect() as conn:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'")
        return found.fetchone() is not None


def entries(user: User | None, store: Store, flt: AuditFilter) -> list[AuditEntry]:
    """Entries matching `flt`, most recent first."""
    require(user, "view_audit")
    if not _has_log(store):
        return []
    where, args = flt.where()
    with store.connect() as conn:
        rows = conn.execute(
            f"SELECT * FROM audit WHERE {where} ORDER BY id DESC LIMIT ?", (*args, flt.limit)
        ).fetchall()
    return [
        AuditEntry(r["id"], r["at"], r["actor"], r["action"], r["target"],
                   json.loads(r["details"]), r["prev_hash"], r["hash"])
        for r in rows
    ]  # fmt: skip


def distinct(user: User | None, store: Store, column: str) -> list[str]:
    """The actors or actions that occur in the log, sorted (for filter pickers)."""
    require(user, "view_audit")
    if column not in ("actor", "action"):
        raise ValueError(f"cannot list distinct {column!r}")
    if not _has_log(store):
        return []
    with store.connect() as conn:
        rows = conn.execute(f"SELECT DISTINCT {column} FROM audit ORDER BY {column}").fetchall()
    return [r[0] for r in rows]


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(rows: list[AuditEntry]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in rows:
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
        writer.writerow(
            [e.id, e.at, _cell(e.actor), _cell(e.action), _cell(e.target), details, e.hash]
        )
    return out.getvalue().encode("utf-8")


def export_csv(user: User | None, store: Store, flt: AuditFilter) -> bytes:
    """The matching entries as UTF-8 CSV; the export is audited."""
    actor = require(user, "view_audit")
    rows = entries(actor, store, flt)
    data = to_csv(rows)
    store.audit(
        actor.name, "export_audit", "", rows=len(rows),
        **{f"filter_{k}": str(v) for k, v in asdict(flt).items() if v is not None},
    )  # fmt: skip
    return data


def verify(user: User | None, store: Store) -> int:
    """Number of entries when the hash chain is intact; StoreError naming the first broken
    entry otherwise."""
    require(user, "view_audit")
    return store.verify_audit()
