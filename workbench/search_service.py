"""Tumour-board search: a query in any workbench language -> the cases' slides, genomic
profiles and English notes nearest to it in the teacher's shared space, grouped by modality.

A query is checked (empty, symbols only, unsupported script -> InputError; too long ->
truncated with a notice), its language detected unless given, and embedded: by the teacher's
own text branch for English (the space the index was built in), by the distilled student
otherwise. The student also classifies it (cancer type, abstention: `cmkd classify`).

Ranking per modality: score = cosine(query, row) + entity_weight * evidence(query, case).
Evidence is the share of the query's clinical concepts (cancer type, subtype, gene, biomarker,
variant kind, stage, metastasis, the slide's TILs and necrosis; a "negative" right after a gene
or biomarker negates it) that the case's record supports. Slides and genomic profiles sit far
from any text in the shared space (cosines ~0.1, nearly flat across cases), so without this a
query such as "metastatic breast cancer with HER2 amplification" reaches the right notes but
arbitrary slides; with it, the HER2-amplified metastatic breast cases' slides and profiles
come first, and every hit shows which concepts it shares with the query. Candidates: the
`candidates` nearest rows by vector plus the rows of the best-supported cases (at most
`evidence_rows`), both under the filters. `entity_weight` 0 gives plain vector search
(docs/search.md compares them).

Each hit carries the cancer type the teacher predicts for its case (fused over the case's
modalities, from the teacher run's logits; the recorded type when the teacher never saw the
case, with `type_source` saying which). Models, index and cohort must come from one teacher:
otherwise StaleIndexError, never silent garbage. Searches run with one intra-op thread
(docs/search_benchmarks.md "Threads"). Every search is audited with the query pseudonymised,
and the matches shown are recorded for review (workbench/review_service.py).
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.data.cohort_io import load_cases
from core.data.lexicon import Lexicon
from core.data.schema import CANCER_TYPES, MODALITIES, NECROSIS_LEVELS, TIL_LEVELS, Case
from core.errors import InputError
from core.index import SearchFilter, StaleIndexError, VectorIndex
from workbench.commands.train import TEACHER_RUN
from workbench.registry import production_version
from workbench.review_service import ReviewService, Shown
from workbench.roles import User, require
from workbench.store import Store, pseudonym
from workbench.text_models import (
    checked_text,
    classify_text,
    production_student,
    teacher_text_encoder,
    text_language,
)
from workbench.workspace import Workspace, workspace_salt

# Lexicon categories whose concepts a case record can support or contradict.
EVIDENCE_CATEGORIES = frozenset(
    {"cancer_type", "subtype", "gene", "biomarker", "variant_kind", "stage"}
)
# Findings that stand for stage IV.
METASTASIS_CONCEPTS = frozenset({"FINDING:METASTASIS", "FINDING:DISTANT_METASTASIS"})
# Findings a case's slide is recorded with (Case.histology).
HISTOLOGY_CONCEPTS = frozenset({*TIL_LEVELS, *NECROSIS_LEVELS})
# Findings a case record can support, beside the EVIDENCE_CATEGORIES.
EVIDENCE_FINDINGS = METASTASIS_CONCEPTS | HISTOLOGY_CONCEPTS
NEGATIVE = "FINDING:NEGATIVE"
NEGATED = "NOT:"  # prefix of a negated concept, e.g. NOT:BIOMARKER:HER2
NEGATION_GAP = 3  # most characters between a gene/biomarker and a following "negative"
# Recorded biomarker statuses that mean "present".
PRESENT_STATUSES = frozenset({"positive", "high", "methylated"})
# Driver consequences -> lexicon variant kinds (the oncoprint's legend, too).
VARIANT_KINDS: dict[str, str] = {
    "missense_variant": "VARKIND:MISSENSE", "stop_gained": "VARKIND:NONSENSE",
    "frameshift_variant": "VARKIND:FRAMESHIFT", "inframe_deletion": "VARKIND:INFRAME_DELETION",
    "splice_donor_variant": "VARKIND:SPLICE", "transcript_amplification": "VARKIND:AMPLIFICATION",
    "transcript_ablation": "VARKIND:DELETION", "gene_fusion": "VARKIND:FUSION",
}  # fmt: skip
ALTERATION_OTHER = "other"  # a driver whose consequence has no variant kind (e.g. promoter)


@dataclass(frozen=True)
class SearchConfig:
    """How queries are checked and results ranked; defaults are what the workbench uses."""

    # Longer queries are cut here (with a notice): the student reads 96 tokens anyway.
    max_query_chars: int = 2000
    # Weight of the entity evidence in the score (0: plain vector search). 0.3 lifts a fully
    # supported case above any cosine gap between notes of one type (~0.1 on the demo).
    entity_weight: float = 0.3
    candidates: int = 200  # nearest rows per modality re-ranked with evidence
    evidence_rows: int = 5000  # most rows of the best-supported cases added to the candidates
    # A best cosine below this is shown as a weak match (nonsense queries score ~0.2 on the
    # demo workspace, real notes of the asked type 0.5-0.7).
    weak_similarity: float = 0.35
    max_k: int = 100  # results per modality at most

    def __post_init__(self) -> None:
        if self.max_query_chars < 1 or self.candidates < 1 or self.max_k < 1:
            raise InputError("SearchConfig: max_query_chars, candidates and max_k must be >= 1")
        if self.entity_weight < 0 or self.evidence_rows < 0:
            raise InputError("SearchConfig: entity_weight and evidence_rows must be >= 0")


@dataclass(frozen=True)
class Notice:
    """Something the user should know about how the query was read (shown, not an error)."""

    code: str  # "truncated", "language_unrecognised", "language_not_distilled"
    message: str  # English; pages translate `code` with `params`
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Entity:
    """A lexicon concept in the query or shared by a hit, named in the user's language."""

    concept_id: str  # NOT:<id> when negated ("HER2 negative")
    category: str
    term: str  # preferred term in the UI language (prefixed "not " when negated)
    text: str = ""  # as written in the query ("" for concepts of a case record)
    start: int = -1  # offsets into the query (-1 when not from the query)
    end: int = -1


@dataclass(frozen=True)
class Alteration:
    gene: str
    kind: str  # a VARIANT_KINDS value, or ALTERATION_OTHER


@dataclass(frozen=True)
class SearchHit:
    query_id: str
    rank: int  # 1-based within its modality
    row: int  # stable row id in the index
    case_id: str
    modality: str
    score: float  # similarity + entity_weight * evidence; what the ranking sorts by
    similarity: float  # cosine between the query and this row
    evidence: float  # share of the query's clinical concepts the case supports, 0..1
    cancer_type: str  # teacher-predicted type of the case
    type_source: str  # "teacher" or "recorded" (case unknown to the teacher run)
    recorded_type: str
    subtype: str
    stage: str
    snippet: str = ""  # note start (notes only)
    note_kind: str = ""
    shared: tuple[Entity, ...] = ()  # concepts shared by the query and this hit
    highlights: tuple[tuple[int, int], ...] = ()  # spans in `snippet` naming shared concepts
    tile_path: str = ""  # absolute path of the case's first tile (slides), "" when none
    has_slide_file: bool = False  # a whole-slide image exists for the slide viewer
    alterations: tuple[Alteration, ...] = ()  # the case's driver events

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    query_id: str
    query: str  # as searched (after truncation); "" for more-like-this
    lang: str
    lang_detected: bool  # True when the language was detected, not given
    like_case: str  # the case of a more-like-this search, else ""
    notices: tuple[Notice, ...]
    entities: tuple[Entity, ...]  # concepts found in the query (or of the like-case)
    predicted_type: str  # the student's cancer type for the query ("" for more-like-this)
    type_probability: float
    abstained: bool  # the classifier is unsure, or the query names nothing oncological
    abstain_reason: str
    weak: bool  # best similarity below SearchConfig.weak_similarity
    best_similarity: float
    groups: dict[str, tuple[SearchHit, ...]]  # modality -> hits, best first

    @property
    def hits(self) -> tuple[SearchHit, ...]:
        return tuple(h for m in MODALITIES for h in self.groups.get(m, ()))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["results"] = [h.to_dict() for h in self.hits]
        del d["groups"]
        return d


class _Memo:
    """The student with its last prediction kept, so classifying a query it has just
    embedded (classify_text predicts again) costs no second forward pass."""

    def __init__(self, student: Any) -> None:
        self.student = student
        self.config = student.config
        self.languages = student.languages
        self._last: tuple[tuple[tuple[str, ...], str | None], Any] | None = None

    def predict(self, texts: Sequence[str], lang: str | None = None) -> Any:
        key = (tuple(texts), lang)
        if self._last is None or self._last[0] != key:
            self._last = (key, self.student.predict(list(texts), lang))
        return self._last[1]


def _script_problem(text: str) -> str:
    """Why `text` is in no supported script (Latin, Devanagari), or "" when it is fine."""
    letters = [ch for ch in text if ch.isalpha()]
    foreign = [ch for ch in letters if not unicodedata.name(ch, "").startswith(("LATIN", "DEVA"))]
    if letters and len(foreign) * 2 > len(letters):
        script = unicodedata.name(foreign[0], "UNKNOWN").split()[0].title()
        return f"the query is written in an unsupported script ({script}); use Latin or Devanagari"
    return ""


def case_concepts(case: Case) -> frozenset[str]:
    """The concepts a case's record supports (see the module docstring)."""
    out = {f"TYPE:{case.cancer_type}", f"STAGE:{case.stage}" if case.stage else ""}
    if case.subtype:
        out.add(f"SUBTYPE:{case.subtype}")
    if case.stage == "IV":
        out |= METASTASIS_CONCEPTS
    for name, status in case.biomarkers:
        out.add(f"BIOMARKER:{name}" if status in PRESENT_STATUSES else f"{NEGATED}BIOMARKER:{name}")
    out |= {f"GENE:{g}" for g in case.drivers}
    out |= set(case.histology)
    out |= {VARIANT_KINDS[v.consequence] for v in case.variants
            if v.role == "driver" and v.consequence in VARIANT_KINDS}  # fmt: skip
    out.discard("")
    return frozenset(out)


def _supports(concepts: frozenset[str], wanted: str) -> bool:
    """Whether a case with `concepts` supports the query concept `wanted`."""
    if wanted.startswith(f"{NEGATED}GENE:"):
        return wanted[len(NEGATED) :] not in concepts  # "EGFR negative": no EGFR driver
    return wanted in concepts


def concept_term(lexicon: Lexicon, concept_id: str, lang: str) -> str:
    """The preferred term of a concept in `lang`; "term: negative" for a NOT: concept."""
    term = lexicon.concept(concept_id.removeprefix(NEGATED)).preferred(lang)
    if concept_id.startswith(NEGATED):
        return f"{term}: {lexicon.term(NEGATIVE, lang)}"
    return term


def _alterations(case: Case) -> tuple[Alteration, ...]:
    seen: dict[str, str] = {}
    for v in case.variants:
        if v.role == "driver":
            seen.setdefault(v.gene, VARIANT_KINDS.get(v.consequence, ALTERATION_OTHER))
    return tuple(Alteration(g, k) for g, k in seen.items())


class SearchService:
    """Search over one workspace: models, index, lexicon and cohort loaded once."""

    def __init__(
        self,
        ws: Workspace,
        cfg: SearchConfig | None = None,
        lexicon: Lexicon | None = None,
        store: Store | None = None,
    ) -> None:
        """Load everything; StaleIndexError when the student, teacher and index disagree,
        InputError when something is missing."""
        import torch
        from threadpoolctl import ThreadpoolController

        from core.train.teacher import load_embeddings

        torch.set_num_threads(1)  # serving: one query at a time (docs/search_benchmarks.md)
        self._threads = ThreadpoolController()
        self.ws, self.cfg = ws, cfg or SearchConfig()
        self.student = _Memo(production_student(ws))
        # The shipped lexicon plus the columns of the student's language packs.
        self.lexicon = lexicon or self.student.student.lexicon
        self.store = store or Store(ws.db_path)
        self._salt = workspace_salt(ws)
        self.reviews = ReviewService(self.store, self._salt)
        teacher_dir = ws.models_dir / TEACHER_RUN
        tensors, info = load_embeddings(teacher_dir)
        version = self.student.config["teacher_version"]
        if info["version"] != version:
            raise StaleIndexError(
                f"the student was distilled from teacher {version}, {teacher_dir} is teacher "
                f"{info['version']}: distil the student again with `cmkd distill`"
            )
        self.index = VectorIndex.load(ws.index_dir, version, expected_dim=self.student_dim())
        self.teacher_version = version
        self._teacher_text: Callable[[str], Any] | None = None
        self._teacher_dir = teacher_dir
        predicted = tensors["logits"].argmax(dim=-1).tolist()
        self._predicted = dict(
            zip(info["case_ids"], (CANCER_TYPES[p] for p in predicted), strict=True)
        )
        self.cases = {c.case_id: c for c in load_cases(ws.cohort_dir)}
        self._columns()

    def student_dim(self) -> int:
        return int(self.student.config["shared_dim"])

    def _columns(self) -> None:
        """Per-row integer codes for filtering, each case's concepts and an inverted index
        concept -> cases, so evidence and filters are vectorised."""
        self._meta = meta = self.index.meta
        self._case_ids, self._row_case = np.unique([m.case_id for m in meta], return_inverse=True)
        self._position = {cid: i for i, cid in enumerate(self._case_ids.tolist())}
        self._row_codes = {
            name: np.unique([getattr(m, name) for m in meta], return_inverse=True)
            for name in ("modality", "cancer_type", "stage")
        }
        empty: frozenset[str] = frozenset()
        self._concepts = [
            case_concepts(self.cases[cid]) if cid in self.cases else empty
            for cid in self._case_ids.tolist()
        ]
        by_concept: dict[str, list[int]] = {}
        for i, concepts in enumerate(self._concepts):
            for c in concepts:
                by_concept.setdefault(c, []).append(i)
        self._by_concept = {c: np.array(v, dtype=np.int64) for c, v in by_concept.items()}
        self._note_matches: dict[int, list[tuple[str, int, int]]] = {}

    # ------------------------------------------------------------------ query reading

    def _read_query(self, text: str, lang: str | None) -> tuple[str, str, bool, list[Notice]]:
        """(text, language, detected?, notices); InputError for unusable input."""
        if not isinstance(text, str):
            raise InputError("the query must be text")
        notices: list[Notice] = []
        text = checked_text("query", text.strip())
        if len(text) > self.cfg.max_query_chars:
            n = self.cfg.max_query_chars
            notices.append(Notice("truncated", f"query truncated to {n} characters",
                                  {"chars": n, "original": len(text)}))  # fmt: skip
            text = text[:n]
        if problem := _script_problem(text):
            raise InputError(problem)
        chosen = text_language(text, lang, self.lexicon, self.student.languages)
        if not lang and chosen == "en":
            from core.data.langid import detect_language

            if not detect_language(text, self.lexicon):
                notices.append(Notice("language_unrecognised",
                                      "language not recognised; searched as English"))  # fmt: skip
        distilled = self.student.languages
        if chosen != "en" and distilled and chosen not in distilled:
            notices.append(Notice(
                "language_not_distilled",
                f"the student was not distilled on {chosen}; results may be poor",
                {"lang": chosen},
            ))  # fmt: skip
        return text, chosen, not lang, notices

    def _embed(self, text: str, lang: str) -> np.ndarray:
        """(D,) unit query vector: the teacher's text branch for English, else the student."""
        import torch

        if lang == "en":
            if self._teacher_text is None:
                self._teacher_text = teacher_text_encoder(self._teacher_dir)
            vector = self._teacher_text(text)
        else:
            vector, _ = self.student.predict([text], lang)
        return torch.nn.functional.normalize(vector.float(), dim=-1)[0].numpy()

    def _entity(self, concept_id: str, ui_lang: str, text: str = "", span=(-1, -1)) -> Entity:
        category = self.lexicon.concept(concept_id.removeprefix(NEGATED)).category
        return Entity(concept_id, category, concept_term(self.lexicon, concept_id, ui_lang),
                      text, *span)  # fmt: skip

    def query_entities(self, text: str, lang: str, ui_lang: str) -> list[Entity]:
        """Lexicon concepts in `text`; a gene or biomarker followed by "negative" is negated."""
        matches = self.lexicon.match(text, lang)
        out: list[Entity] = []
        for i, m in enumerate(matches):
            if m.concept_id == NEGATIVE and out and out[-1].category in ("gene", "biomarker"):
                continue  # folded into the concept before it
            cid = m.concept_id
            nxt = matches[i + 1] if i + 1 < len(matches) else None
            category = self.lexicon.concept(cid).category
            if (nxt is not None and nxt.concept_id == NEGATIVE
                    and category in ("gene", "biomarker")
                    and nxt.start - m.end <= NEGATION_GAP):  # fmt: skip
                cid = NEGATED + cid
            out.append(self._entity(cid, ui_lang, m.text, (m.start, m.end)))
        return out

    @staticmethod
    def evidence_concepts(entities: Sequence[Entity]) -> tuple[str, ...]:
        """The query concepts a case record can support, in query order, once each."""
        wanted = (
            e.concept_id
            for e in entities
            if e.category in EVIDENCE_CATEGORIES or e.concept_id in EVIDENCE_FINDINGS
        )
        return tuple(dict.fromkeys(wanted))  # fmt: skip

    # ------------------------------------------------------------------ ranking

    def _mask(self, f: SearchFilter) -> np.ndarray:
        """(N,) bool: rows that pass `f` (the index applies the same filter to its own)."""
        mask = np.ones(len(self._row_case), dtype=bool)
        for name, wanted in (("modality", f.modalities), ("cancer_type", f.cancer_types),
                             ("stage", f.stages)):  # fmt: skip
            if wanted:
                values, codes = self._row_codes[name]
                mask &= np.isin(codes, np.flatnonzero(np.isin(values, list(wanted))))
        if f.exclude_cases:
            excluded = [self._position[c] for c in f.exclude_cases if c in self._position]
            mask &= ~np.isin(self._row_case, excluded)
        return mask

    def _case_evidence(self, concepts: Sequence[str]) -> np.ndarray:
        """(n_cases,) share of `concepts` each case supports (see `_supports`)."""
        counts = np.zeros(len(self._case_ids))
        none = np.empty(0, dtype=np.int64)
        for w in concepts:
            if w.startswith(f"{NEGATED}GENE:"):
                counts += 1.0
                counts[self._by_concept.get(w[len(NEGATED) :], none)] -= 1.0
            else:
                counts[self._by_concept.get(w, none)] += 1.0
        return counts / max(len(concepts), 1)

    def _rank(
        self, q: np.ndarray, evidence: np.ndarray, f: SearchFilter, k: int
    ) -> list[tuple[int, float, float, float]]:
        """(row, score, similarity, evidence) of the best `k` rows under `f`."""
        hits = self.index.search(q, max(k, self.cfg.candidates), f)
        rows = np.array([h.row for h in hits], dtype=np.int64)
        sims = np.array([h.score for h in hits], dtype=np.float64)
        row_ev = evidence[self._row_case]  # (N,)
        weight = self.cfg.entity_weight
        if weight > 0 and self.cfg.evidence_rows and row_ev.max(initial=0.0) > 0:
            extra = np.flatnonzero(self._mask(f) & (row_ev > 0))
            if len(extra) > self.cfg.evidence_rows:
                best = np.argsort(-row_ev[extra], kind="stable")[: self.cfg.evidence_rows]
                extra = extra[best]
            seen = np.zeros(len(row_ev), dtype=bool)
            seen[rows] = True
            extra = extra[~seen[extra]]
            rows = np.concatenate([rows, extra])
            sims = np.concatenate([sims, self.index.vectors[extra] @ q])  # (len(extra),)
        scores = sims + weight * row_ev[rows]
        order = np.lexsort((rows, -scores))[:k]  # best first; ties by row id
        return [(int(rows[i]), float(scores[i]), float(sims[i]), float(row_ev[rows[i]]))
                for i in order]  # fmt: skip

    def _note_spans(self, row: int) -> list[tuple[str, int, int]]:
        """(concept, start, end) of lexicon terms in the snippet of note row `row`."""
        if row not in self._note_matches:
            snippet = self._meta[row].snippet
            self._note_matches[row] = [(m.concept_id, m.start, m.end)
                                       for m in self.lexicon.match(snippet, "en")]  # fmt: skip
        return self._note_matches[row]

    def _hit(
        self, query_id: str, rank: int, ranked: tuple[int, float, float, float],
        wanted: Sequence[str], ui_lang: str,
    ) -> SearchHit:  # fmt: skip
        row, score, sim, ev = ranked
        m = self._meta[row]
        case = self.cases.get(m.case_id)
        concepts = self._concepts[self._row_case[row]]
        shared = [w for w in wanted if _supports(concepts, w)]
        highlights: list[tuple[int, int]] = []
        if m.modality == "note":
            plain = {w for w in wanted if not w.startswith(NEGATED)}
            for cid, start, end in self._note_spans(row):
                if cid in plain:
                    highlights.append((start, end))
                    if cid not in shared:
                        shared.append(cid)
        tile = ""
        if case is not None and case.tile_paths:
            tile = str(self.ws.cohort_dir / case.tile_paths[0])
        predicted = self._predicted.get(m.case_id)
        return SearchHit(
            query_id=query_id, rank=rank, row=row, case_id=m.case_id, modality=m.modality,
            score=round(score, 4), similarity=round(sim, 4), evidence=round(ev, 4),
            cancer_type=predicted or m.cancer_type,
            type_source="teacher" if predicted else "recorded",
            recorded_type=m.cancer_type, subtype=m.subtype, stage=m.stage, snippet=m.snippet,
            note_kind=m.note_kind,
            shared=tuple(self._entity(c, ui_lang) for c in shared),
            highlights=tuple(highlights), tile_path=tile,
            has_slide_file=bool(case and case.slide_path),
            alterations=_alterations(case) if case else (),
        )  # fmt: skip

    def _filters(
        self, modalities: Sequence[str], cancer_types: Sequence[str], stages: Sequence[str],
        exclude: tuple[str, ...] = (),
    ) -> tuple[tuple[str, ...], dict[str, SearchFilter]]:  # fmt: skip
        chosen = tuple(m for m in MODALITIES if not modalities or m in modalities)
        base = SearchFilter(tuple(modalities), tuple(cancer_types), tuple(stages), exclude)
        return chosen, {
            m: SearchFilter((m,), base.cancer_types, base.stages, exclude) for m in chosen
        }

    def _search(
        self, user: User, q: np.ndarray, wanted: Sequence[str], k: int,
        filters: dict[str, SearchFilter], ui_lang: str,
    ) -> tuple[str, dict[str, tuple[SearchHit, ...]]]:  # fmt: skip
        if not 1 <= k <= self.cfg.max_k:
            raise InputError(f"k must be between 1 and {self.cfg.max_k}, got {k}")
        query_id = secrets.token_hex(8)
        evidence = self._case_evidence(wanted)
        with self._threads.limit(limits=1):
            groups = {
                m: tuple(self._hit(query_id, i, r, wanted, ui_lang)
                         for i, r in enumerate(self._rank(q, evidence, f, k), 1))
                for m, f in filters.items()
            }  # fmt: skip
        return query_id, groups

    # ------------------------------------------------------------------ public API

    def search(
        self,
        user: User | None,
        query: str,
        lang: str | None = None,
        k: int = 10,
        modalities: Sequence[str] = (),
        cancer_types: Sequence[str] = (),
        stages: Sequence[str] = (),
        ui_lang: str = "en",
        record: bool = True,
        exclude_cases: Sequence[str] = (),
    ) -> SearchResult:
        """The best `k` hits per modality for `query` (see the module docstring).

        `record` False keeps the shown matches out of the review queue (batch runs);
        `exclude_cases` leaves cases out (an evaluation's own query case)."""
        user = require(user, "search")
        text, lang, detected, notices = self._read_query(query, lang)
        chosen, filters = self._filters(modalities, cancer_types, stages, tuple(exclude_cases))
        q = self._embed(text, lang)
        verdict = classify_text(text, lang, self.student, self.lexicon)
        entities = self.query_entities(text, lang, ui_lang)
        wanted = self.evidence_concepts(entities)
        query_id, groups = self._search(user, q, wanted, k, filters, ui_lang)
        result = self._result(
            query_id, text, lang, detected, "", notices, entities, groups,
            verdict["label"], verdict["probabilities"][verdict["label"]],
            verdict["abstained"], verdict["abstain_reason"],
        )  # fmt: skip
        self._log(user, result, q, wanted, record, pseudonym(text, self._salt), chosen)
        return result

    def more_like_this(
        self,
        user: User | None,
        case_id: str,
        k: int = 10,
        modalities: Sequence[str] = (),
        cancer_types: Sequence[str] = (),
        stages: Sequence[str] = (),
        ui_lang: str = "en",
        record: bool = True,
    ) -> SearchResult:
        """Cases like `case_id`: its own vectors (mean of its indexed modalities) as the query
        and its record's concepts as evidence; the case itself is excluded."""
        user = require(user, "search")
        rows = self.index.case_rows(case_id)
        if not len(rows):
            raise InputError(f"case {case_id!r} is not in the search index")
        q = self.index.vectors[rows].mean(axis=0)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        concepts = self._concepts[self._position[case_id]]
        ordered = sorted(c for c in concepts if not c.startswith(f"{NEGATED}GENE:"))
        entities = [self._entity(c, ui_lang) for c in ordered]
        wanted = self.evidence_concepts(entities)
        chosen, filters = self._filters(modalities, cancer_types, stages, (case_id,))
        query_id, groups = self._search(user, q, wanted, k, filters, ui_lang)
        result = self._result(query_id, "", "", False, case_id, [], entities, groups,
                              "", 0.0, False, "")  # fmt: skip
        self._log(user, result, q, wanted, record, case_id, chosen)
        return result

    def _result(
        self, query_id: str, text: str, lang: str, detected: bool, like: str,
        notices: Sequence[Notice], entities: Sequence[Entity],
        groups: dict[str, tuple[SearchHit, ...]], label: str, prob: float, abstained: bool,
        reason: str,
    ) -> SearchResult:  # fmt: skip
        best = max((h.similarity for hits in groups.values() for h in hits), default=0.0)
        return SearchResult(
            query_id=query_id, query=text, lang=lang, lang_detected=detected, like_case=like,
            notices=tuple(notices), entities=tuple(entities), predicted_type=label,
            type_probability=round(float(prob), 4), abstained=abstained, abstain_reason=reason,
            weak=best < self.cfg.weak_similarity, best_similarity=round(best, 4),
            groups=groups,
        )  # fmt: skip

    def _log(
        self, user: User, result: SearchResult, q: np.ndarray, wanted: Sequence[str],
        record: bool, target: str, modalities: Sequence[str],
    ) -> None:  # fmt: skip
        """Audit the search (pseudonymised) and queue its matches for review."""
        action = "more_like_this" if result.like_case else "search"
        self.store.audit(
            user.name, action, target, query_id=result.query_id, lang=result.lang,
            modalities=list(modalities), results=len(result.hits), recorded=record,
        )  # fmt: skip
        if record:
            shown = [Shown(h.case_id, h.modality, h.row, h.rank, h.score) for h in result.hits]
            self.reviews.record_search(
                user, result.query_id, target, result.lang or "case", list(wanted),
                result.predicted_type, q, shown,
            )  # fmt: skip


def service_for(root: Path) -> SearchService:
    """The search service of the workspace at `root`, one per production student: after a
    promotion or rollback the next call loads a new service (the check is one readlink;
    loading takes seconds, so callers need no cache of their own)."""
    ws = Workspace(Path(root).resolve())
    return _service(ws.root, production_version(ws))


@lru_cache(maxsize=2)  # the current production and the one before it (a rollback is instant)
def _service(root: Path, version: str | None) -> SearchService:
    """`version` only keys the cache."""
    return SearchService(Workspace(root))
