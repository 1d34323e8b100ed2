"""The patient-summary service: drafts, clinician edits, approvals and exports.

A summary is rendered from a case's facts (or facts entered by hand) plus two free-text fields
a clinician may fill in, stored per case and language. Its hash covers the facts, the rendered
text and the picture, so an approval is bound to exactly what the clinician read. Exports
(PDF, text, Markdown, audio) need an approval of the current hash; saving an edit invalidates
every earlier approval of that case and language, so reverting the text does not bring an old
approval back. Roles are checked here, not only in the page: writing needs `write_summary`,
approving `approve_summary`. Every edit, approval and export is audited (hashes and lengths,
never the free text).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.data.cohort_io import CASES_FILE, IMPORTED_FILE, load_cases
from core.data.schema import Case
from core.errors import InputError
from core.knowledge.tables import KnowledgeBase
from core.summaries import audio
from core.summaries.facts import FactsInput, SummaryFacts, derive_facts, facts_from_case
from core.summaries.pdf import summary_pdf
from core.summaries.render import PhraseBank, Summary, Tile, render
from workbench.errors import PermissionDenied
from workbench.roles import User, require
from workbench.store import Store
from workbench.workspace import Workspace

EXPORT_FORMATS: tuple[str, ...] = ("pdf", "txt", "md")
MEDIA_TYPES = {"pdf": "application/pdf", "txt": "text/plain", "md": "text/markdown",
               "wav": "audio/wav"}  # fmt: skip

ReferenceTileProvider = Callable[[Case], Path | None]

_DDL = """
CREATE TABLE IF NOT EXISTS summary_texts (
    case_key TEXT NOT NULL,        -- case id, or manual-<hash> for facts entered by hand
    lang TEXT NOT NULL,
    clinician_note TEXT NOT NULL,
    prognosis TEXT NOT NULL,       -- only ever what a clinician wrote
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,      -- UTC ISO-8601
    PRIMARY KEY (case_key, lang)
);
CREATE TABLE IF NOT EXISTS summary_approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    case_key TEXT NOT NULL,
    lang TEXT NOT NULL,
    summary_hash TEXT NOT NULL,    -- sha256 of facts, rendered text and picture
    approved_by TEXT NOT NULL,
    role TEXT NOT NULL,
    approved_at TEXT NOT NULL,
    invalidated_at TEXT,           -- set when the summary is edited after approval
    invalidated_by TEXT
);
CREATE INDEX IF NOT EXISTS summary_approvals_case ON summary_approvals (case_key, lang);
"""


@dataclass(frozen=True)
class Approval:
    id: int
    case_key: str
    lang: str
    summary_hash: str
    approved_by: str
    role: str
    approved_at: str


@dataclass(frozen=True)
class SummaryDraft:
    """A rendered summary, its hash, and the approval that covers exactly this hash (if any)."""

    facts: SummaryFacts
    summary: Summary
    summary_hash: str
    approval: Approval | None

    @property
    def approved(self) -> bool:
        return self.approval is not None

    @property
    def case_key(self) -> str:
        return self.facts.case_key

    @property
    def lang(self) -> str:
        return self.summary.lang


def own_tile_provider(cohort_dir: Path) -> ReferenceTileProvider:
    """The case's own first tile (used when the case has no slide in the index)."""

    def provide(case: Case) -> Path | None:
        return next((p for t in case.tile_paths if (p := cohort_dir / t).is_file()), None)

    return provide


def index_tile_provider(index_dir: Path, cohort_dir: Path) -> ReferenceTileProvider:
    """ "Your tumour looks like this": the first tile of the OTHER case whose slide embedding
    is nearest to this case's in the retrieval index; the case's own tile when the index or
    the case's slide vector is missing. The index is read on first use."""
    from core.index import SearchFilter, VectorIndex

    own = own_tile_provider(cohort_dir)
    state: dict[str, Any] = {}

    def provide(case: Case) -> Path | None:
        if "index" not in state:
            state["index"] = (
                VectorIndex.load(index_dir) if (index_dir / "meta.json").exists() else None
            )
            state["cases"] = {c.case_id: c for c in load_cases(cohort_dir)}
        index: VectorIndex | None = state["index"]
        if index is None:
            return own(case)
        meta = index.meta
        slide_rows = [r for r in index.case_rows(case.case_id) if meta[r].modality == "slide"]
        if not slide_rows:
            return own(case)
        hits = index.search(
            index.vectors[slide_rows[0]], k=5,
            filters=SearchFilter(modalities=("slide",), exclude_cases=(case.case_id,)),
        )  # fmt: skip
        for hit in hits:
            neighbour = state["cases"].get(hit.meta.case_id)
            if neighbour is not None and (tile := own(neighbour)) is not None:
                return tile
        return own(case)

    return provide


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def summary_hash(facts: SummaryFacts, summary: Summary) -> str:
    """sha256 over the facts, the rendered text and the picture's bytes."""
    tile = hashlib.sha256(summary.tile.path.read_bytes()).hexdigest() if summary.tile else ""
    payload = json.dumps(
        {"facts": dataclasses.asdict(facts), "text": summary.to_text(), "lang": summary.lang,
         "tile": tile},
        sort_keys=True, ensure_ascii=False, default=str,
    )  # fmt: skip
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class SummaryService:
    """Drafts, edits, approvals and exports of patient summaries over one workspace."""

    def __init__(
        self,
        store: Store,
        cohort_dir: Path,
        kb: KnowledgeBase | None = None,
        reference_tile_provider: ReferenceTileProvider | None = None,
    ) -> None:
        self.store = store
        self.cohort_dir = Path(cohort_dir)
        self._kb = kb
        self._loaded: tuple[tuple[int, ...], dict[str, Case]] | None = None
        self.reference_tile_provider = reference_tile_provider or own_tile_provider(self.cohort_dir)

    @classmethod
    def from_workspace(cls, ws: Workspace, **kwargs: object) -> SummaryService:
        """The workspace's service, with reference tiles from its retrieval index."""
        kwargs.setdefault(
            "reference_tile_provider", index_tile_provider(ws.index_dir, ws.cohort_dir)
        )
        return cls(Store(ws.db_path), ws.cohort_dir, **kwargs)

    @property
    def kb(self) -> KnowledgeBase:
        if self._kb is None:
            self._kb = KnowledgeBase.load()
        return self._kb

    def _cases(self) -> dict[str, Case]:
        """The cohort's cases, read again when its files change (`cmkd demo`, an import)."""
        files = (self.cohort_dir / CASES_FILE, self.cohort_dir / IMPORTED_FILE)
        stamp = tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in files)
        if self._loaded is None or self._loaded[0] != stamp:
            self._loaded = (stamp, {c.case_id: c for c in load_cases(self.cohort_dir)})
        return self._loaded[1]

    def case_ids(self) -> tuple[str, ...]:
        return tuple(self._cases())

    def case(self, case_id: str) -> Case:
        try:
            return self._cases()[case_id]
        except KeyError:
            raise InputError(f"no case {case_id!r} in {self.cohort_dir}") from None

    def facts_for_case(self, case_id: str) -> SummaryFacts:
        return facts_from_case(self.case(case_id), self.kb)

    def facts_for_entry(self, entry: FactsInput) -> SummaryFacts:
        """Facts entered by hand (not in the cohort); `entry.case_id` must be empty."""
        if entry.case_id:
            raise InputError("facts entered by hand must not carry a cohort case id")
        return derive_facts(entry, self.kb)

    # --- drafts ------------------------------------------------------------------------

    def _tile(self, facts: SummaryFacts) -> Tile | None:
        if not facts.input.case_id:
            return None
        case = self.case(facts.input.case_id)
        path = self.reference_tile_provider(case)
        if path is None:
            return None
        own = {(self.cohort_dir / t).resolve() for t in case.tile_paths}
        return Tile(Path(path), own=Path(path).resolve() in own)

    def _free_text(self, case_key: str, lang: str) -> tuple[str, str]:
        self.store.ensure(_DDL)
        with self.store.connect() as conn:
            row = conn.execute(
                "SELECT clinician_note, prognosis FROM summary_texts WHERE case_key=? AND lang=?",
                (case_key, lang),
            ).fetchone()
        return (row["clinician_note"], row["prognosis"]) if row else ("", "")

    def _approval(self, case_key: str, lang: str, digest: str) -> Approval | None:
        self.store.ensure(_DDL)
        with self.store.connect() as conn:
            row = conn.execute(
                "SELECT id, case_key, lang, summary_hash, approved_by, role, approved_at"
                " FROM summary_approvals WHERE case_key=? AND lang=? AND summary_hash=?"
                " AND invalidated_at IS NULL ORDER BY id DESC LIMIT 1",
                (case_key, lang, digest),
            ).fetchone()
        return Approval(**dict(row)) if row else None

    def draft(self, user: User | None, facts: SummaryFacts, lang: str) -> SummaryDraft:
        """The current summary of `facts` in `lang`, with the stored free text."""
        require(user, "write_summary")
        note, prognosis = self._free_text(facts.case_key, lang)
        facts = facts.with_free_text(note, prognosis)
        summary = render(facts, PhraseBank.load(lang), self._tile(facts))
        digest = summary_hash(facts, summary)
        return SummaryDraft(facts, summary, digest, self._approval(facts.case_key, lang, digest))

    def view_in(self, draft: SummaryDraft, lang: str) -> Summary:
        """The same summary (facts, free text, picture) in another language, for the clinician
        to read beside the patient's; sentence for sentence, so traces line up."""
        return render(draft.facts, PhraseBank.load(lang), draft.summary.tile)

    def draft_for_case(self, user: User | None, case_id: str, lang: str) -> SummaryDraft:
        return self.draft(user, self.facts_for_case(case_id), lang)

    def _current(self, user: User | None, draft: SummaryDraft) -> SummaryDraft:
        """`draft` re-rendered from the store; InputError when it changed since it was shown."""
        current = self.draft(user, draft.facts, draft.lang)
        if current.summary_hash != draft.summary_hash:
            raise InputError("the summary changed since it was shown; reload it and check again")
        return current

    # --- edits and approvals -----------------------------------------------------------

    def save_free_text(
        self, user: User | None, draft: SummaryDraft, clinician_note: str, prognosis: str
    ) -> SummaryDraft:
        """Store the clinician's free text; any change invalidates earlier approvals."""
        user = require(user, "write_summary")
        edited = draft.facts.with_free_text(clinician_note, prognosis)  # validates lengths
        key, lang = draft.case_key, draft.lang
        old = self._free_text(key, lang)
        new = (edited.clinician_note, edited.prognosis)
        if new == old:
            return self.draft(user, draft.facts, lang)
        with self.store.connect() as conn:
            conn.execute(
                "INSERT INTO summary_texts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (case_key, lang)"
                " DO UPDATE SET clinician_note=excluded.clinician_note,"
                " prognosis=excluded.prognosis, updated_by=excluded.updated_by,"
                " updated_at=excluded.updated_at",
                (key, lang, *new, user.name, _now()),
            )
            revoked = conn.execute(
                "UPDATE summary_approvals SET invalidated_at=?, invalidated_by=?"
                " WHERE case_key=? AND lang=? AND invalidated_at IS NULL",
                (_now(), user.name, key, lang),
            ).rowcount
        self.store.audit(
            user.name, "edit_summary", key, lang=lang, note_chars=len(new[0]),
            prognosis_chars=len(new[1]), approvals_invalidated=revoked,
        )  # fmt: skip
        return self.draft(user, draft.facts, lang)

    def approve(self, user: User | None, draft: SummaryDraft) -> Approval:
        """Record that `user` checked this exact summary and approves it for the patient."""
        user = require(user, "approve_summary")
        current = self._current(user, draft)
        if current.approval is not None:
            return current.approval
        at = _now()
        shown = (draft.facts.clinician_note, draft.facts.prognosis)
        # One transaction, so no edit can land between this check and the insert.
        with self.store.connect() as conn:
            stored = conn.execute(
                "SELECT clinician_note, prognosis FROM summary_texts WHERE case_key=? AND lang=?",
                (draft.case_key, draft.lang),
            ).fetchone()
            if (tuple(stored) if stored else ("", "")) != shown:
                raise InputError("the summary was edited meanwhile; reload it and check again")
            approval_id = conn.execute(
                "INSERT INTO summary_approvals (case_key, lang, summary_hash, approved_by,"
                " role, approved_at) VALUES (?, ?, ?, ?, ?, ?)",
                (draft.case_key, draft.lang, draft.summary_hash, user.name, user.role, at),
            ).lastrowid
        self.store.audit(
            user.name, "approve_summary", draft.case_key, lang=draft.lang,
            summary_hash=draft.summary_hash,
        )  # fmt: skip
        return Approval(approval_id, draft.case_key, draft.lang, draft.summary_hash, user.name,
                        user.role, at)  # fmt: skip

    # --- exports -----------------------------------------------------------------------

    def approval_line(self, draft: SummaryDraft) -> str:
        """Who approved the summary and when, in its language; "" when it is not approved."""
        if draft.approval is None:
            return ""
        return PhraseBank.load(draft.lang).phrase(
            "approved_by", name=draft.approval.approved_by, date=draft.approval.approved_at[:10]
        )

    def _exportable(
        self, user: User | None, draft: SummaryDraft, as_draft: bool
    ) -> tuple[User, SummaryDraft]:
        user = require(user, "write_summary")
        current = self._current(user, draft)
        if not current.approved and not as_draft:
            raise PermissionDenied(
                f"the {current.lang} summary of {current.case_key} is not approved: a clinician "
                "must approve it before it is exported"
            )
        return user, current

    def export(
        self, user: User | None, draft: SummaryDraft, fmt: str, as_draft: bool = False
    ) -> bytes:
        """The summary as `fmt` (pdf, txt or md). Needs an approval of this exact summary,
        unless `as_draft`, which marks every page "DRAFT — not approved for patient use"."""
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"unknown export format {fmt!r}; expected one of {EXPORT_FORMATS}")
        user, current = self._exportable(user, draft, as_draft)
        marked = not current.approved
        footer = self.approval_line(current)
        if fmt == "pdf":
            data = summary_pdf(current.summary, draft=marked, footer=footer)
        else:
            text = (
                current.summary.to_markdown(marked)
                if fmt == "md"
                else current.summary.to_text(marked)
            )
            data = (text + (f"\n{footer}\n" if footer else "")).encode("utf-8")
        self._audit_export(user, current, fmt, marked)
        return data

    def audio_available(self, lang: str) -> bool:
        return audio.available(lang)

    def export_audio(self, user: User | None, draft: SummaryDraft) -> bytes:
        """The approved summary read aloud (WAV); CmkdError when espeak-ng is missing."""
        user, current = self._exportable(user, draft, as_draft=False)
        data = audio.summary_wav(current.summary)
        self._audit_export(user, current, "wav", False)
        return data

    def _audit_export(self, user: User, draft: SummaryDraft, fmt: str, marked: bool) -> None:
        self.store.audit(
            user.name, "export_summary", draft.case_key, lang=draft.lang, format=fmt,
            summary_hash=draft.summary_hash, draft=marked,
        )  # fmt: skip
