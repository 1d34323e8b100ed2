"""Human-translated parallel sentences (NTREX-128, FLORES-200) shipped in assets/parallel/.

Each row is one English sentence with its translations into the student languages. A fixed
set of HELDOUT_ROWS rows is kept for evaluation (translation retrieval): the rows whose
SHA-256 hash of the row id is smallest. The choice depends only on the ids, so it is the
same in every process and on every machine, and `load_parallel` never returns those rows
for training. Licence and sources: assets/parallel/SOURCES.md (CC BY-SA 4.0).
"""

from __future__ import annotations

import csv
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.data.schema import STUDENT_LANGUAGES, TEACHER_LANGUAGE
from core.errors import InputError

PARALLEL_FILES: tuple[str, ...] = (
    "ntrex128_en-sw-hi-pt-es-de-fr.tsv",
    "flores200-sib200_en-sw-hi-pt-es-de-fr.tsv",
)
HELDOUT_ROWS = 300  # rows kept for translation-retrieval evaluation, never trained on
PARALLEL_SPLITS: tuple[str, ...] = ("train", "heldout")


def default_dir() -> Path:
    """The shipped copy: <repo root>/assets/parallel."""
    return Path(__file__).resolve().parents[2] / "assets" / "parallel"


@dataclass(frozen=True)
class ParallelRow:
    """One aligned unit: `texts[lang]` translates `texts["en"]`."""

    row_id: str  # e.g. "ntrex128-0001", "flores200-sib-0"
    texts: dict[str, str]  # language -> sentence, English included

    @property
    def en(self) -> str:
        return self.texts[TEACHER_LANGUAGE]


def _id_hash(row_id: str) -> str:
    return hashlib.sha256(row_id.encode("utf-8")).hexdigest()


def _read(path: Path) -> list[ParallelRow]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            lines = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name}: cannot read parallel text: {exc}") from exc
    if not lines:
        raise InputError(f"{path.name}: empty file")
    header = lines[0]
    if "id" not in header or TEACHER_LANGUAGE not in header:
        raise InputError(f"{path.name}: needs columns 'id' and 'en', got {header}")
    langs = [c for c in header if c != "id"]
    rows = []
    for lineno, cells in enumerate(lines[1:], 2):
        if len(cells) != len(header):
            raise InputError(
                f"{path.name}: line {lineno}: {len(cells)} cells, expected {len(header)}"
            )
        record = dict(zip(header, cells, strict=True))
        # A language whose cell is empty is simply missing from that row.
        texts = {lang: record[lang].strip() for lang in langs if record[lang].strip()}
        if TEACHER_LANGUAGE not in texts:
            raise InputError(f"{path.name}: line {lineno}: no English sentence")
        rows.append(ParallelRow(record["id"], texts))
    return rows


@functools.lru_cache(maxsize=4)
def _all_rows(directory: Path) -> tuple[tuple[ParallelRow, ...], frozenset[str]]:
    """Every row of every file in `directory`, and the held-out row ids."""
    rows = [row for name in PARALLEL_FILES for row in _read(directory / name)]
    ids = [r.row_id for r in rows]
    if len(set(ids)) != len(ids):
        raise InputError(f"{directory}: duplicate parallel row ids")
    heldout = frozenset(sorted(ids, key=_id_hash)[:HELDOUT_ROWS])
    return tuple(rows), heldout


def load_parallel(
    languages: Sequence[str] = STUDENT_LANGUAGES,
    split: str = "train",
    directory: Path | None = None,
) -> tuple[ParallelRow, ...]:
    """Rows of `split` ("train": never the held-out rows; "heldout": only them), in file order.

    Each row keeps English and those of `languages` it has; rows with none of `languages`
    are left out.
    """
    if split not in PARALLEL_SPLITS:
        raise InputError(f"unknown parallel split {split!r}; expected one of {PARALLEL_SPLITS}")
    unknown = sorted(set(languages) - set(STUDENT_LANGUAGES))
    if unknown:
        raise InputError(f"no parallel text for languages {unknown}; have {STUDENT_LANGUAGES}")
    rows, heldout = _all_rows(Path(directory or default_dir()).resolve())
    wanted = (TEACHER_LANGUAGE, *languages)
    out = []
    for row in rows:
        if (row.row_id in heldout) != (split == "heldout"):
            continue
        texts = {lang: row.texts[lang] for lang in wanted if lang in row.texts}
        if len(texts) > 1:
            out.append(ParallelRow(row.row_id, texts))
    return tuple(out)


def heldout_parallel(
    languages: Sequence[str] = STUDENT_LANGUAGES, directory: Path | None = None
) -> tuple[ParallelRow, ...]:
    """The HELDOUT_ROWS evaluation rows (translation retrieval); training never sees them."""
    return load_parallel(languages, "heldout", directory)
