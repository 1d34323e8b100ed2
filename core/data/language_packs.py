"""Language packs: a new student language as data, not code.

A pack is a folder `<workspace>/languages/<code>/` holding

- `pack.json`: {"code": "it", "name": "Italiano", "script": "Latin"};
- `phrases.tsv`: a header `en<TAB><code>`, then at least MIN_PHRASES rows of an English
  sentence and its human translation;
- `lexicon.tsv`: a header `concept_id<TAB><code>`, then rows of a concept id of the shipped
  lexicon (assets/lexicon/concepts.tsv) and its `|`-separated terms, preferred first.

The cohort has no notes in a pack language, so distillation (core/train/distill.py) learns it
from the phrases alone, as it learns from the human-translated parallel sentences: the student
reads the translation and matches the teacher's embedding of the English side. The lexicon
column lets entity-aware attention and the entity matcher find concepts in the language.

A fixed HELDOUT_SHARE of the phrases is kept for validation: those whose SHA-256 of the English
side is smallest, so the split does not depend on row order, process or machine. Every error
reads "FILE: line N: reason" so a user can fix the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.data.lexicon import TERM_SEPARATOR, Lexicon, default_lexicon
from core.data.parallel import ParallelRow
from core.data.schema import LANGUAGES, TEACHER_LANGUAGE
from core.errors import InputError
from core.io import atomic_directory, write_atomic

PACKS_DIR = "languages"  # <workspace>/languages/<code>/
PACK_FILE = "pack.json"
PHRASES_FILE = "phrases.tsv"
LEXICON_FILE = "lexicon.tsv"
MIN_PHRASES = 50  # fewer leave too few held-out phrases to measure anything
HELDOUT_SHARE = 0.2  # phrases kept for held-out retrieval, never trained on
PACK_SPLITS: tuple[str, ...] = ("train", "heldout")
_CODE = re.compile(r"[a-z]{2}")  # ISO 639-1


@dataclass(frozen=True)
class LanguagePack:
    """A validated language pack (see the module docstring)."""

    code: str  # ISO 639-1, not a built-in language
    name: str  # the language's name in itself, e.g. "Italiano"
    script: str  # main writing system of the phrases, e.g. "Latin", "Devanagari"
    phrases: tuple[tuple[str, str], ...]  # (English, translation), file order
    terms: Mapping[str, tuple[str, ...]] = field(hash=False)  # concept id -> terms

    def split(self, part: str) -> tuple[tuple[str, str], ...]:
        """The "train" or "heldout" phrases, in file order."""
        if part not in PACK_SPLITS:
            raise InputError(f"unknown pack split {part!r}; expected one of {PACK_SPLITS}")
        n = math.ceil(len(self.phrases) * HELDOUT_SHARE)
        heldout = set(sorted((en for en, _ in self.phrases), key=_hash)[:n])
        return tuple(p for p in self.phrases if (p[0] in heldout) == (part == "heldout"))

    def parallel_rows(self, part: str) -> tuple[ParallelRow, ...]:
        """The phrases of `part` as parallel rows (English and the pack language)."""
        return tuple(
            ParallelRow(f"{self.code}-{_hash(en)[:12]}", {TEACHER_LANGUAGE: en, self.code: tr})
            for en, tr in self.split(part)
        )

    def extend(self, lexicon: Lexicon) -> Lexicon:
        """`lexicon` with this pack's column added."""
        return lexicon.with_language(self.code, self.terms)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_pack_code(code: str) -> bool:
    """Whether `code` can name a pack language: ISO 639-1 and not built in."""
    return bool(_CODE.fullmatch(code)) and code not in LANGUAGES


def check_code(code: str) -> str:
    """`code` when it can name a new language; InputError otherwise."""
    if not _CODE.fullmatch(code):
        raise InputError(f"language code {code!r} must be ISO 639-1: two lowercase letters")
    if code in LANGUAGES:
        raise InputError(f"language {code!r} is built in already; a pack adds a new language")
    return code


def _decode(data: bytes, source: str) -> list[str]:
    """The lines of UTF-8 `data` (a BOM from spreadsheets is dropped)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{source}: line {line}: not UTF-8 text") from None
    return text.splitlines()


def _rows(lines: list[str], header: tuple[str, str], source: str) -> list[tuple[int, str, str]]:
    """(line number, first cell, second cell) of the non-blank lines after `header`."""
    if not lines or tuple(lines[0].split("\t")) != header:
        raise InputError(f"{source}: line 1: the header must be {'<TAB>'.join(header)}")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        cells = [unicodedata.normalize("NFC", c.strip()) for c in line.split("\t")]
        if len(cells) != 2:
            raise InputError(f"{source}: line {lineno}: expected 2 tab-separated cells, found "
                             f"{len(cells)}")  # fmt: skip
        if not all(cells):
            raise InputError(f"{source}: line {lineno}: empty cell")
        rows.append((lineno, cells[0], cells[1]))
    return rows


def parse_phrases(
    data: bytes, code: str, source: str = PHRASES_FILE
) -> tuple[tuple[str, str], ...]:
    """Validated (English, translation) pairs of a phrases.tsv."""
    rows = _rows(_decode(data, source), (TEACHER_LANGUAGE, code), source)
    first: dict[tuple[int, str], int] = {}  # (column, text) -> line
    for lineno, en, tr in rows:
        for column, text in enumerate((en, tr)):
            prev = first.setdefault((column, text.casefold()), lineno)
            if prev != lineno:
                side = "English sentence" if column == 0 else f"{code} sentence"
                raise InputError(f"{source}: line {lineno}: duplicate {side} (first on line "
                                 f"{prev})")  # fmt: skip
    if len(rows) < MIN_PHRASES:
        raise InputError(f"{source}: {len(rows)} phrases; a pack needs at least {MIN_PHRASES}")
    return tuple((en, tr) for _, en, tr in rows)


def parse_lexicon_column(
    data: bytes, code: str, source: str = LEXICON_FILE, base: Lexicon | None = None
) -> dict[str, tuple[str, ...]]:
    """Validated concept id -> terms of a lexicon.tsv, against `base` (the shipped lexicon)."""
    base = base or default_lexicon()
    rows = _rows(_decode(data, source), ("concept_id", code), source)
    terms: dict[str, tuple[str, ...]] = {}
    owner: dict[str, tuple[str, int]] = {}  # casefolded term -> (concept id, line)
    for lineno, cid, cell in rows:
        where = f"{source}: line {lineno}"
        if cid not in base.concepts:
            raise InputError(f"{where}: unknown concept id {cid!r} (not in the shipped lexicon)")
        if cid in terms:
            raise InputError(f"{where}: duplicate concept id {cid}")
        cid_terms = tuple(t.strip() for t in cell.split(TERM_SEPARATOR))
        for term in cid_terms:
            if not term:
                raise InputError(f"{where}: empty term in {cell!r}")
            prev = owner.setdefault(term.casefold(), (cid, lineno))
            if prev != (cid, lineno):
                raise InputError(f"{where}: term {term!r} repeats line {prev[1]} ({prev[0]})")
            other = base.term_owner(term)
            if other not in (None, cid):
                raise InputError(f"{where}: term {term!r} already names {other} in the lexicon")
        terms[cid] = cid_terms
    if not terms:
        raise InputError(f"{source}: no concept rows")
    return terms


def _script(texts: list[str]) -> str:
    """The most common Unicode script (first word of the character names) of the letters."""
    names = Counter(
        unicodedata.name(ch, "UNKNOWN").split()[0] for text in texts for ch in text if ch.isalpha()
    )
    return names.most_common(1)[0][0].title() if names else "Unknown"


def build_pack(
    code: str, phrases: bytes, lexicon: bytes, name: str = "", script: str = ""
) -> LanguagePack:
    """A validated pack from the two files' bytes; without `script` it is read off the
    phrases."""
    code = check_code(code)
    pairs = parse_phrases(phrases, code)
    terms = parse_lexicon_column(lexicon, code)
    script = script or _script([t for _, t in pairs])
    return LanguagePack(code, name.strip() or code, script, pairs, terms)


def load_pack(directory: Path) -> LanguagePack:
    """The pack in `directory`, validated; InputError naming the file (and line) otherwise."""
    directory = Path(directory)
    source = f"{directory.name}/{PACK_FILE}"
    try:
        meta = json.loads((directory / PACK_FILE).read_text(encoding="utf-8"))
        phrases = (directory / PHRASES_FILE).read_bytes()
        lexicon = (directory / LEXICON_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{directory}: not a readable language pack: {exc}") from exc
    if not isinstance(meta, dict) or set(meta) != {"code", "name", "script"}:
        raise InputError(f"{source}: needs exactly the keys code, name and script")
    if not all(isinstance(v, str) for v in meta.values()):
        raise InputError(f"{source}: code, name and script must be strings")
    return build_pack(meta["code"], phrases, lexicon, meta["name"], meta["script"])


def install_pack(
    packs_dir: Path, code: str, phrases: bytes, lexicon: bytes, name: str = ""
) -> LanguagePack:
    """Validate the files and write the pack to `packs_dir/<code>/` atomically (a pack of the
    same code is replaced whole); nothing is written when a file is invalid."""
    pack = build_pack(code, phrases, lexicon, name)
    with atomic_directory(Path(packs_dir) / pack.code) as tmp:
        save_pack(pack, tmp)
    return pack


def save_pack(pack: LanguagePack, directory: Path) -> None:
    """Write `pack`'s three files (normalised: NFC, trimmed cells) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"code": pack.code, "name": pack.name, "script": pack.script}
    phrases = [f"{TEACHER_LANGUAGE}\t{pack.code}", *(f"{en}\t{tr}" for en, tr in pack.phrases)]
    column = [f"concept_id\t{pack.code}"]
    column += [f"{cid}\t{TERM_SEPARATOR.join(terms)}" for cid, terms in pack.terms.items()]
    write_atomic(directory / PACK_FILE, (json.dumps(meta, ensure_ascii=False) + "\n").encode())
    for name, lines in ((PHRASES_FILE, phrases), (LEXICON_FILE, column)):
        write_atomic(directory / name, ("\n".join(lines) + "\n").encode("utf-8"))


def merged_lexicon(packs: Iterable[LanguagePack], base: Lexicon | None = None) -> Lexicon:
    """`base` (the shipped lexicon) with the column of every pack added."""
    lexicon = base or default_lexicon()
    for pack in packs:
        lexicon = pack.extend(lexicon)
    return lexicon


def installed_packs(packs_dir: Path) -> dict[str, Path]:
    """Code -> folder of every pack folder in `packs_dir` (not validated; `load_pack` does)."""
    packs_dir = Path(packs_dir)
    if not packs_dir.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(packs_dir.iterdir())
        if p.is_dir() and is_pack_code(p.name) and (p / PACK_FILE).is_file()
    }
