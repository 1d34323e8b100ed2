"""The multilingual oncology lexicon and its entity matcher.

`assets/lexicon/concepts.tsv` holds one concept per row: id, category, NCI Thesaurus code and,
per language, `|`-separated terms with the preferred term first. `Lexicon.match` finds every
term in a text, longest match first, left to right, without overlaps.

Matching works on tokens: a token is a run of alphanumerics and combining marks (so Devanagari
vowel signs and viramas stay inside a word) or one punctuation character. Whitespace,
underscores and hyphens/dashes only separate tokens, so "non-small cell" also finds "non small
cell" and "HER2 positive" finds "HER2-positive". Tokens are compared after NFC normalisation and
casefolding; accents still matter. Offsets always point into the caller's original string,
whether it is NFC or NFD. One exception to casefolding: a term that is a short all-capital
acronym ("ER", "MET", "KIT", "EGFR") matches only as written, because its lowercase form is
an everyday word in some language (German "er", English "met", "kit") or another abbreviation
("eGFR", the kidney filtration rate).

Pass the note's language to `match`: with `lang=None` every language's terms are tried, and
a word of one language can be a term of another (Portuguese "mama", breast, is the Swahili
word for mother).

A casefolded term belongs to exactly one concept across all languages, so a match is never
ambiguous. Where a tumour type and a morphology share a name ("glioblastoma"), the name goes
to the tumour type and the morphology keeps its ICD-O form ("glioblastoma, NOS").
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data.schema import LANGUAGES, TEACHER_LANGUAGE
from core.errors import InputError

# Category -> the prefix its concept ids must carry.
CATEGORY_PREFIXES: dict[str, str] = {
    "cancer_type": "TYPE",  # the cohort's 15 TCGA study codes, nothing else
    "subtype": "SUBTYPE",  # schema.SUBTYPES ids
    "disease": "DX",  # other diseases: distractors, history, umbrella terms
    "gene": "GENE",
    "biomarker": "BIOMARKER",
    "stage": "STAGE",
    "grade": "GRADE",
    "site": "SITE",
    "morphology": "MORPH",
    "variant_kind": "VARKIND",
    "treatment": "TX",
    "procedure": "PROC",  # surgery types, biopsies, imaging, assays, tumour boards
    "finding": "FINDING",  # pathology findings, responses, symptoms, variant classes
    "lab": "LAB",  # serum tumour markers and other laboratory values
}
FIXED_COLUMNS: tuple[str, ...] = ("concept_id", "category", "ncit")
TERM_SEPARATOR = "|"

_CONCEPT_ID = re.compile(r"[A-Z]+:[A-Z0-9_]+")
_NCIT_CODE = re.compile(r"C[0-9]+")
_LANG_CODE = re.compile(r"[a-z]{2,3}")
# Hyphens, dashes and the minus sign separate tokens like whitespace does (underscores too,
# by being replaced with spaces before scanning).
_DASHES = "\\-\u2010\u2011\u2012\u2013\u2014\u2212"
# Curly and modifier apostrophes read as the straight one ("l’ovaire" == "l'ovaire").
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# Acronyms of at most this many capital letters match case-sensitively (see module doc).
MAX_CASED_ACRONYM = 4
# Trie key marking "a term ends here"; never a token, since tokens are non-empty.
_END = ""


def default_path() -> Path:
    """The shipped lexicon: <repo root>/assets/lexicon/concepts.tsv."""
    return Path(__file__).resolve().parents[2] / "assets" / "lexicon" / "concepts.tsv"


@dataclass(frozen=True)
class Concept:
    """One lexicon concept with its terms per language (preferred term first)."""

    concept_id: str  # e.g. "TYPE:BRCA", "GENE:EGFR"
    category: str  # one of CATEGORY_PREFIXES
    ncit: str  # NCI Thesaurus code such as "C4194", or "" when not known for certain
    terms: dict[str, tuple[str, ...]] = field(hash=False)  # language -> terms, preferred first

    def preferred(self, lang: str) -> str:
        """The preferred term in `lang`."""
        try:
            return self.terms[lang][0]
        except KeyError:
            raise InputError(f"lexicon: no language {lang!r} for {self.concept_id}") from None


@dataclass(frozen=True)
class EntityMatch:
    """One term found in a text; `text == input[start:end]` of the original input."""

    concept_id: str
    start: int
    end: int
    text: str


@functools.cache
def _token_pattern() -> re.Pattern[str]:
    """Tokens: runs of word characters/combining marks/zero-width (non-)joiners, or one symbol.

    Python's `\\w` leaves out combining marks (Devanagari vowel signs, NFD accents), so the
    marks are listed explicitly. Built on first use because it scans the code points. `\\w`
    also takes "_", which `_tokenize` turns into spaces first.
    """
    planes = (range(0x20000), range(0xE0000, 0xE1000))  # marks live in planes 0, 1 and 14
    ranges: list[tuple[int, int]] = []
    for plane in planes:
        for cp in plane:
            if unicodedata.category(chr(cp))[0] != "M":
                continue
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    marks = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return re.compile(f"[\\w{marks}\u200c\u200d]+|[^\\s{_DASHES}]")


def _tokenize(text: str) -> tuple[list[int], list[int], list[str], list[str]]:
    """Start and end offsets, NFC forms and casefolded keys of the tokens of `text`.

    Whole-list operations rather than a per-match generator: this is the matcher's hot path.
    """
    scan = text.replace("_", " ")  # same length, so offsets still point into `text`
    toks = _token_pattern().findall(scan)
    starts, ends, pos = [], [], 0
    for tok in toks:
        pos = scan.find(tok, pos)  # only separators lie between tokens
        starts.append(pos)
        pos += len(tok)
        ends.append(pos)
    if not unicodedata.is_normalized("NFC", text):
        toks = [unicodedata.normalize("NFC", t) for t in toks]
    keys = [t.lower() if t.isascii() else t.casefold().translate(_QUOTES) for t in toks]
    return starts, ends, toks, keys


def _term_key(term: str) -> tuple[str, ...]:
    return tuple(_tokenize(term)[3])


def is_cased_acronym(term: str) -> bool:
    """True for terms matched case-sensitively: "ER", "KIT", "EGFR" (not "HER2", "PD-L1")."""
    return term.isascii() and term.isalpha() and term.isupper() and len(term) <= MAX_CASED_ACRONYM


# Token trie: token key -> child node; the _END key holds the concept id of a term ending here.
_Node = dict[str, Any]


def _insert(trie: _Node, key: tuple[str, ...], concept_id: str) -> None:
    node = trie
    for tok in key:
        node = node.setdefault(tok, {})
    node[_END] = concept_id


class Lexicon:
    """Concepts by id, lookup of terms, and the entity matcher."""

    def __init__(self, concepts: Mapping[str, Concept]) -> None:
        """Index already validated concepts; use `load` or `parse` to read a TSV."""
        self.concepts: dict[str, Concept] = dict(concepts)
        self.languages: tuple[str, ...] = tuple(
            next(iter(self.concepts.values())).terms if self.concepts else LANGUAGES
        )
        self._by_category: dict[str, tuple[str, ...]] = {
            cat: tuple(c.concept_id for c in self.concepts.values() if c.category == cat)
            for cat in CATEGORY_PREFIXES
        }
        # Per query language (its own terms plus English ones; all languages for None): a
        # token trie of the casefolded terms and a dict of the case-sensitive acronyms.
        self._tries: dict[str | None, _Node] = {}
        self._acronyms: dict[str | None, dict[str, str]] = {}
        for lang in (None, *self.languages):
            langs = self.languages if lang is None else {lang, TEACHER_LANGUAGE}
            trie: _Node = {}
            acronyms: dict[str, str] = {}
            for c in self.concepts.values():
                for term_lang in langs:
                    for term in c.terms[term_lang]:
                        if is_cased_acronym(term):
                            acronyms[term] = c.concept_id
                        else:
                            _insert(trie, _term_key(term), c.concept_id)
            self._tries[lang] = trie
            self._acronyms[lang] = acronyms

    @classmethod
    def load(cls, path: Path | None = None) -> Lexicon:
        """Read and validate a concepts TSV (default: the shipped one)."""
        path = default_path() if path is None else Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")  # tolerate a BOM from spreadsheets
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path.name}: cannot read: {exc}") from exc
        return cls.parse(text, source=path.name)

    @classmethod
    def parse(cls, text: str, source: str = "concepts.tsv") -> Lexicon:
        """Validate TSV text; errors read "<source>: line N: reason"."""
        return cls(_parse_concepts(text, source))

    def concept(self, concept_id: str) -> Concept:
        """The concept with this id, e.g. "GENE:EGFR"."""
        try:
            return self.concepts[concept_id]
        except KeyError:
            raise InputError(f"lexicon: unknown concept id {concept_id!r}") from None

    def ids(self, category: str) -> tuple[str, ...]:
        """Concept ids of `category`, in file order."""
        try:
            return self._by_category[category]
        except KeyError:
            raise InputError(f"lexicon: unknown category {category!r}") from None

    def term(self, concept_id: str, lang: str, rng: np.random.Generator | None = None) -> str:
        """The preferred term, or a uniformly drawn synonym (preferred included) given `rng`."""
        terms = self.concept(concept_id).terms.get(lang)
        if terms is None:
            raise InputError(f"lexicon: unknown language {lang!r}")
        return terms[0] if rng is None else terms[int(rng.integers(len(terms)))]

    @functools.cached_property
    def _owners(self) -> dict[tuple[str, ...], str]:
        """Casefolded term key -> its concept id, over every language."""
        return {
            _term_key(term): c.concept_id
            for c in self.concepts.values()
            for terms in c.terms.values()
            for term in terms
        }

    def term_owner(self, term: str) -> str | None:
        """The concept one of whose terms (any language) reads as `term`, or None."""
        return self._owners.get(_term_key(term))

    def with_language(self, lang: str, terms: Mapping[str, tuple[str, ...]]) -> Lexicon:
        """A copy with a language column added (a language pack): `terms` maps concept ids to
        their NFC terms in `lang`, preferred first. Concepts without one fall back to their
        English terms, so `preferred(lang)` always answers. InputError when `lang` is already
        a column, a concept id is unknown or a term already belongs to another concept."""
        if lang in self.languages or not _LANG_CODE.fullmatch(lang):
            raise InputError(f"lexicon: cannot add language {lang!r}: already there or not a code")
        for cid, cid_terms in terms.items():
            self.concept(cid)
            for term in cid_terms:
                owner = self.term_owner(term)
                if owner not in (None, cid):
                    raise InputError(f"lexicon: {lang} term {term!r} of {cid} belongs to {owner}")
        return Lexicon({
            cid: dataclasses.replace(
                c, terms={**c.terms, lang: terms.get(cid) or c.terms[TEACHER_LANGUAGE]}
            )
            for cid, c in self.concepts.items()
        })  # fmt: skip

    def match(self, text: str, lang: str | None = None) -> list[EntityMatch]:
        """Every term of `lang` and English (all languages when None) in `text`.

        Longest match wins; matches do not overlap and are scanned left to right.
        """
        trie = self._tries.get(lang)
        if trie is None:
            raise InputError(f"lexicon: unknown language {lang!r}")
        acronyms = self._acronyms[lang]
        starts, ends, toks, keys = _tokenize(text)
        found: list[EntityMatch] = []
        i, n = 0, len(keys)
        while i < n:
            node = trie.get(keys[i])
            best_end, best_id = -1, ""
            j = i
            while node is not None:
                cid = node.get(_END)
                if cid is not None:
                    best_end, best_id = j, cid
                j += 1
                node = node.get(keys[j]) if j < n else None
            if best_end < 0:
                # Term keys are unique, so an acronym never competes with a one-token term.
                best_id = acronyms.get(toks[i], "")
                if not best_id:
                    i += 1
                    continue
                best_end = i
            start, end = starts[i], ends[best_end]
            found.append(EntityMatch(best_id, start, end, text[start:end]))
            i = best_end + 1
        return found


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The shipped lexicon, loaded once per process."""
    return Lexicon.load()


def _parse_concepts(text: str, source: str) -> dict[str, Concept]:
    lines = text.splitlines()
    if not lines:
        raise InputError(f"{source}: line 1: empty file, expected a header row")
    header = lines[0].split("\t")
    langs = tuple(header[len(FIXED_COLUMNS) :])
    if tuple(header[: len(FIXED_COLUMNS)]) != FIXED_COLUMNS:
        raise InputError(f"{source}: line 1: header must start with {'/'.join(FIXED_COLUMNS)}")
    bad = [lang for lang in langs if not _LANG_CODE.fullmatch(lang)]
    missing = [lang for lang in LANGUAGES if lang not in langs]
    if bad or missing or len(set(langs)) != len(langs):
        raise InputError(
            f"{source}: line 1: language columns {langs} must be distinct ISO codes "
            f"covering {LANGUAGES}"
        )

    concepts: dict[str, Concept] = {}
    lines_of: dict[str, int] = {}  # concept id -> line
    owner: dict[tuple[str, ...], tuple[str, int]] = {}  # term key -> (concept id, line)
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{source}: line {lineno}"
        cells = line.split("\t")
        if len(cells) != len(header):
            raise InputError(
                f"{where}: expected {len(header)} tab-separated columns, found {len(cells)}"
            )
        cid, category, ncit = cells[:3]
        if not _CONCEPT_ID.fullmatch(cid):
            raise InputError(f"{where}: bad concept id {cid!r} (expected e.g. GENE:EGFR)")
        if cid in concepts:
            raise InputError(f"{where}: duplicate concept id {cid} (first on line {lines_of[cid]})")
        prefix = CATEGORY_PREFIXES.get(category)
        if prefix is None:
            raise InputError(f"{where}: unknown category {category!r}")
        if cid.split(":", 1)[0] != prefix:
            raise InputError(
                f"{where}: concept id {cid} of category {category} must start with {prefix}:"
            )
        if ncit and not _NCIT_CODE.fullmatch(ncit):
            raise InputError(f"{where}: bad NCIt code {ncit!r} (expected e.g. C4194, or blank)")

        terms: dict[str, tuple[str, ...]] = {}
        for lang, cell in zip(langs, cells[3:], strict=True):
            if not cell.strip():
                raise InputError(f"{where}: missing {lang} term for {cid}")
            lang_terms = tuple(t.strip() for t in cell.split(TERM_SEPARATOR))
            for term in lang_terms:
                if not term:
                    raise InputError(f"{where}: empty {lang} term in {cell!r}")
                if not unicodedata.is_normalized("NFC", term):
                    raise InputError(f"{where}: {lang} term {term!r} is not NFC-normalised")
                key = _term_key(term)
                if not key:
                    raise InputError(f"{where}: {lang} term {term!r} has no word or symbol")
                prev = owner.setdefault(key, (cid, lineno))
                if prev[0] != cid:
                    raise InputError(
                        f"{where}: {lang} term {term!r} already belongs to {prev[0]} "
                        f"(line {prev[1]})"
                    )
            if len({_term_key(t) for t in lang_terms}) != len(lang_terms):
                raise InputError(f"{where}: repeated {lang} term in {cell!r}")
            terms[lang] = lang_terms
        concepts[cid] = Concept(cid, category, ncit, terms)
        lines_of[cid] = lineno
    return concepts
