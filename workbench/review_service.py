"""Staff review of search matches: what was shown, what staff said about it, and what that
says about the search.

Every search a user runs in the workbench records its query (pseudonymised text, language,
the lexicon concepts it named and its embedding) and the results shown, so a review queue can
list matches nobody has judged yet. A review gives one shown match a verdict (relevant / not
relevant / wrong modality) and an optional comment; the latest verdict on a match counts.

A search keeps only a pseudonym of its query text: reviewers in the queue judge a match
against the query's language, its concepts (e.g. TYPE:BRCA, BIOMARKER:HER2) and predicted
type, which say what was asked without the free text. The text is kept, in this local store
only, for a query whose match got a verdict from someone who had the text (the searcher,
reviewing on the search page): retraining needs it, because the student must learn to encode
that very text away from the rejected case, and neither a pseudonym nor the query's embedding
can be fed to the student. Patient data never leaves the machine this way; the text reaches
the job folder of a retraining on this workspace (`export_hard_negatives`, audited) and no
further. Queries nobody judged with their text keep only the pseudonym.

precision@k: for each (query, modality) with at least one reviewed match ranked <= k, the
share of those reviewed matches that are relevant (wrong modality counts as not relevant);
the mean over those pairs, per language and modality. Unreviewed matches do not count.

Reading reviews, the queue, precision and exports needs the `review` permission; recording a
search happens on behalf of whoever searched (the search service checked `search`).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.data.schema import MODALITIES
from core.errors import InputError
from core.io import write_atomic
from workbench.roles import User, require
from workbench.store import Store, pseudonym
from workbench.workspace import Workspace, workspace_salt

VERDICTS: tuple[str, ...] = ("relevant", "not_relevant", "wrong_modality")
MAX_COMMENT_CHARS = 1000  # a review comment is a remark, not a report
CSV_COLUMNS: tuple[str, ...] = (
    "query_id", "query_pseudonym", "lang", "case_id", "modality", "row", "rank", "score",
    "verdict", "comment", "user", "reviewed_at",
)  # fmt: skip

_DDL = """
CREATE TABLE IF NOT EXISTS search_queries (
    query_id TEXT PRIMARY KEY,
    query_pseudonym TEXT NOT NULL,  -- store.pseudonym of the query text; the text is not kept
    lang TEXT NOT NULL,
    concepts TEXT NOT NULL,         -- JSON list of lexicon concept ids named by the query
    predicted_type TEXT NOT NULL,
    embedding BLOB NOT NULL,        -- float32 query vector in the teacher's shared space
    user TEXT NOT NULL,
    searched_at TEXT NOT NULL       -- UTC ISO-8601
);
CREATE TABLE IF NOT EXISTS search_shown (
    query_id TEXT NOT NULL REFERENCES search_queries (query_id),
    case_id TEXT NOT NULL,
    modality TEXT NOT NULL,
    row INTEGER NOT NULL,           -- stable row id in the retrieval index
    rank INTEGER NOT NULL,          -- 1-based, within its modality group
    score REAL NOT NULL,
    PRIMARY KEY (query_id, row)
);
CREATE TABLE IF NOT EXISTS reviews (
    query_id TEXT NOT NULL REFERENCES search_queries (query_id),
    row INTEGER NOT NULL,           -- the reviewed match: a row shown for this query
    verdict TEXT NOT NULL CHECK (verdict IN ('relevant', 'not_relevant', 'wrong_modality')),
    comment TEXT NOT NULL,
    user TEXT NOT NULL,
    reviewed_at TEXT NOT NULL,
    PRIMARY KEY (query_id, row)     -- the latest verdict on a match counts
);
CREATE TABLE IF NOT EXISTS judged_query_texts (
    query_id TEXT PRIMARY KEY REFERENCES search_queries (query_id),
    text TEXT NOT NULL,             -- the query as searched: kept only once a match is judged
    kept_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Shown:
    """One match shown for a query."""

    case_id: str
    modality: str
    row: int
    rank: int  # 1-based within its modality group
    score: float


@dataclass(frozen=True)
class Pending:
    """A shown match nobody has reviewed yet, with what the query asked."""

    query_id: str
    query_pseudonym: str
    lang: str
    concepts: tuple[str, ...]
    predicted_type: str
    case_id: str
    modality: str
    row: int
    rank: int
    score: float
    searched_at: str


@dataclass(frozen=True)
class Review:
    query_id: str
    query_pseudonym: str
    lang: str
    case_id: str
    modality: str
    row: int
    rank: int
    score: float
    verdict: str
    comment: str
    user: str
    reviewed_at: str


@dataclass(frozen=True)
class Precision:
    """precision@k of one language and modality (see the module docstring)."""

    lang: str
    modality: str
    k: int
    precision: float
    queries: int  # (query, modality) pairs with a reviewed match ranked <= k
    reviewed: int  # reviewed matches ranked <= k


@dataclass(frozen=True)
class HardNegative:
    """A match staff judged wrong for a query: retraining pushes the student's encoding of the
    query text away from the case's vector of that modality (row `row` of the index)."""

    query_id: str
    lang: str
    embedding: np.ndarray  # (D,) float32, the query in the teacher's shared space
    case_id: str
    modality: str
    row: int
    verdict: str  # "not_relevant" or "wrong_modality"
    text: str = ""  # the query text; "" when nobody judged it with the text at hand


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ReviewService:
    """Shown matches, reviews, precision@k and exports over one workspace store. `salt` (the
    workspace's pseudonym salt) lets `review` check a query text against its pseudonym;
    without it, query texts are refused."""

    def __init__(self, store: Store, salt: str | None = None) -> None:
        self.store = store
        self.salt = salt

    @classmethod
    def from_workspace(cls, ws: Workspace) -> ReviewService:
        return cls(Store(ws.db_path), workspace_salt(ws))

    def _connect(self):  # noqa: ANN202 - Store.connect's context manager
        self.store.ensure(_DDL)
        return self.store.connect()

    # --- recording -----------------------------------------------------------------------

    def record_search(
        self,
        user: User,
        query_id: str,
        query_pseudonym: str,
        lang: str,
        concepts: Sequence[str],
        predicted_type: str,
        embedding: np.ndarray,
        shown: Sequence[Shown],
    ) -> None:
        """Store one search and the matches it showed (they join the review queue)."""
        vector = np.ascontiguousarray(embedding, dtype=np.float32)
        if vector.ndim != 1:
            raise InputError(f"a query embedding is one vector (D,), got shape {vector.shape}")
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO search_queries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (query_id, query_pseudonym, lang, json.dumps(list(concepts)), predicted_type,
                 vector.tobytes(), user.name, _now()),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO search_shown VALUES (?, ?, ?, ?, ?, ?)",
                [(query_id, s.case_id, s.modality, s.row, s.rank, s.score) for s in shown],
            )

    def review(
        self,
        user: User | None,
        query_id: str,
        row: int,
        verdict: str,
        comment: str = "",
        query_text: str = "",
    ) -> Review:
        """Record `user`'s verdict on a shown match (replacing an earlier verdict on it).

        `query_text`: the query as searched, when the reviewer has it (the search page); it
        must match the query's pseudonym and is then kept for retraining (see the module
        docstring). "" keeps nothing."""
        user = require(user, "review")
        if verdict not in VERDICTS:
            raise InputError(f"unknown verdict {verdict!r}; choose from {', '.join(VERDICTS)}")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InputError(f"comment has {len(comment)} characters; at most {MAX_COMMENT_CHARS}")
        if query_text and self.salt is None:
            raise InputError("cannot check a query text here: open the reviews of a workspace")
        with self._connect() as conn:
            shown = conn.execute(
                "SELECT s.case_id, s.modality, q.query_pseudonym FROM search_shown s"
                " JOIN search_queries q USING (query_id) WHERE query_id=? AND row=?",
                (query_id, row),
            ).fetchone()
            if shown is None:
                raise InputError(f"index row {row} was not shown for query {query_id}")
            if query_text:
                if pseudonym(query_text, self.salt) != shown["query_pseudonym"]:
                    raise InputError(f"the query text given is not the text of query {query_id}")
                conn.execute(
                    "INSERT OR IGNORE INTO judged_query_texts VALUES (?, ?, ?)",
                    (query_id, query_text, _now()),
                )
            conn.execute(
                "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (query_id, row)"
                " DO UPDATE SET verdict=excluded.verdict, comment=excluded.comment,"
                " user=excluded.user, reviewed_at=excluded.reviewed_at",
                (query_id, row, verdict, comment, user.name, _now()),
            )
        # The comment and the query text stay out of the audit log: free text may name a
        # patient.
        self.store.audit(
            user.name, "review", query_id, case_id=shown["case_id"], modality=shown["modality"],
            row=row, verdict=verdict, comment_chars=len(comment), kept_text=bool(query_text),
        )  # fmt: skip
        return self._reviews("WHERE r.query_id = ? AND r.row = ?", (query_id, row))[0]

    # --- reading -------------------------------------------------------------------------

    def pending(self, user: User | None, limit: int = 100) -> list[Pending]:
        """Shown matches without a review, newest search first, best rank first."""
        require(user, "review")
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT q.query_id, q.query_pseudonym, q.lang, q.concepts, q.predicted_type,"
                " s.case_id, s.modality, s.row, s.rank, s.score, q.searched_at"
                " FROM search_shown s JOIN search_queries q USING (query_id)"
                " LEFT JOIN reviews r USING (query_id, row)"
                " WHERE r.verdict IS NULL ORDER BY q.searched_at DESC, q.rowid DESC, s.rank,"
                " s.modality LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            Pending(r[0], r[1], r[2], tuple(json.loads(r[3])), *tuple(r)[4:]) for r in rows
        ]  # fmt: skip

    def _reviews(self, where: str = "", args: tuple = ()) -> list[Review]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT r.query_id, q.query_pseudonym, q.lang, s.case_id, s.modality, r.row,"
                " s.rank, s.score, r.verdict, r.comment, r.user, r.reviewed_at"
                " FROM reviews r JOIN search_queries q USING (query_id)"
                " JOIN search_shown s USING (query_id, row) " + where +
                " ORDER BY r.reviewed_at, r.rowid",
                args,
            ).fetchall()  # fmt: skip
        return [Review(*tuple(r)) for r in rows]

    def reviews(self, user: User | None) -> list[Review]:
        """Every review, oldest first."""
        require(user, "review")
        return self._reviews()

    def precision_at_k(self, user: User | None, k: int = 10) -> list[Precision]:
        """precision@k per (language, modality) from reviews (see the module docstring)."""
        require(user, "review")
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        per_query: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
        for r in self._reviews():
            if r.rank <= k:
                per_query[(r.lang, r.modality, r.query_id)].append(r.verdict == "relevant")
        groups: dict[tuple[str, str], list[list[bool]]] = defaultdict(list)
        for (lang, modality, _), verdicts in per_query.items():
            groups[(lang, modality)].append(verdicts)
        order = {m: i for i, m in enumerate(MODALITIES)}
        return [
            Precision(
                lang,
                modality,
                k,
                float(np.mean([np.mean(v) for v in lists])),
                len(lists),
                sum(map(len, lists)),
            )  # fmt: skip
            for (lang, modality), lists in sorted(
                groups.items(), key=lambda g: (g[0][0], order.get(g[0][1], 99))
            )
        ]

    # --- export and retraining -----------------------------------------------------------

    def csv_bytes(self, user: User | None) -> bytes:
        """Every review as UTF-8 CSV (CSV_COLUMNS); audited, as it leaves the workbench."""
        user = require(user, "review")
        rows = self._reviews()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            # A leading =, +, - or @ would make a spreadsheet run the comment as a formula.
            comment = "'" + r.comment if r.comment[:1] in ("=", "+", "-", "@") else r.comment
            writer.writerow((r.query_id, r.query_pseudonym, r.lang, r.case_id, r.modality,
                             r.row, r.rank, f"{r.score:.4f}", r.verdict, comment, r.user,
                             r.reviewed_at))  # fmt: skip
        self.store.audit(user.name, "export_reviews", "csv", rows=len(rows))
        return out.getvalue().encode("utf-8")

    def export_csv(self, user: User | None, path: Path) -> Path:
        """Write `csv_bytes` to `path` atomically; returns the path."""
        path = Path(path)
        write_atomic(path, self.csv_bytes(user))
        return path

    def _judged(self, where: str) -> list[HardNegative]:
        """Reviewed matches (as HardNegative records, whatever the verdict) with the query's
        embedding and kept text, oldest review first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT r.query_id, q.lang, q.embedding, s.case_id, s.modality, r.row, r.verdict,"
                " COALESCE(t.text, '') FROM reviews r JOIN search_queries q USING (query_id)"
                " JOIN search_shown s USING (query_id, row)"
                " LEFT JOIN judged_query_texts t USING (query_id) "
                + where + " ORDER BY r.reviewed_at, r.rowid"
            ).fetchall()  # fmt: skip
        return [
            HardNegative(r[0], r[1], np.frombuffer(r[2], dtype=np.float32).copy(), *tuple(r)[3:])
            for r in rows
        ]

    def hard_negatives(self, user: User | None) -> list[HardNegative]:
        """Matches reviewed not relevant or wrong modality, with the query's embedding, its
        text where it was kept ("" otherwise) and the index row of the match, oldest review
        first."""
        require(user, "review")
        return self._judged("WHERE r.verdict != 'relevant'")

    def export_hard_negatives(self, user: User | None, path: Path) -> int:
        """Write the reviewed matches whose query text was kept to `path` as JSONL (atomic,
        private to the owner, audited), one {"text", "lang", "case_id", "modality", "verdict"}
        per line: not_relevant and wrong_modality ones are hard negatives, relevant ones the
        positives of the same query (core/train/distill.py rows (d)). Returns the lines
        written; reviews without a kept text are left out and counted in the audit entry."""
        user = require(user, "review")
        judged = self._judged("")
        kept = [j for j in judged if j.text]
        lines = [
            json.dumps({"text": j.text, "lang": j.lang, "case_id": j.case_id,
                        "modality": j.modality, "verdict": j.verdict}, ensure_ascii=False)
            for j in kept
        ]  # fmt: skip
        write_atomic(Path(path), "".join(line + "\n" for line in lines).encode("utf-8"))
        self.store.audit(
            user.name, "export_hard_negatives", str(path), rows=len(kept),
            negatives=sum(j.verdict != "relevant" for j in kept),
            without_text=len(judged) - len(kept),
        )  # fmt: skip
        return len(kept)
