"""Import real cases from a manifest CSV into a cohort.

Columns (header row required; only `case_id` is mandatory):

    case_id, label, subtype, stage, tile_paths, slide_path, vcf_path, note_text, note_lang, split

`tile_paths` holds one or more image paths separated by `;`. A case may span several rows
(one note per row; tiles accumulate). Relative paths are resolved against the manifest's
folder. Every row is validated before anything is written: one bad row rejects the whole
manifest, with every problem listed as `MANIFEST: row N: reason`.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.data.cohort_io import CASES_FILE, IMPORTED_FILE, load_cases
from core.data.schema import CANCER_TYPES, LANGUAGES, SPLITS, STAGES, Case, Note
from core.errors import ManifestError
from core.io import atomic_path

COLUMNS = (
    "case_id", "label", "subtype", "stage", "tile_paths", "slide_path", "vcf_path",
    "note_text", "note_lang", "split",
)  # fmt: skip
MAX_NOTE_CHARS = 100_000  # longer text is almost certainly a wrong column
MAX_IMAGE_PIXELS = 40_000 * 40_000  # tiles and slide thumbnails above this are refused
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".bif")
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".bcf")


@dataclass
class _Draft:
    """A case being assembled from its manifest rows."""

    case_id: str
    first_row: int
    label: str = ""
    subtype: str = ""
    stage: str = ""
    split: str = "train"
    tiles: list[Path] = field(default_factory=list)
    slide: Path | None = None
    vcf: Path | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)  # (lang, text)


def _check_image(path: Path) -> str | None:
    """Reason the file is not a usable tile image, or None."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:
                return f"{path.name}: image of {im.width}x{im.height} pixels is too large"
            im.verify()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        return f"{path.name}: not a readable image ({e.__class__.__name__})"
    return None


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def read_manifest(manifest: Path, existing_ids: set[str] = frozenset()) -> list[_Draft]:
    """Parse and validate a manifest; raise ManifestError listing every bad row."""
    manifest = Path(manifest)
    name = manifest.name
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: file not found")
    base = manifest.parent
    errors: list[str] = []
    drafts: dict[str, _Draft] = {}
    try:
        with manifest.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if "case_id" not in header:
                raise ManifestError(f"{name}: line 1: header must contain a case_id column")
            unknown = [c for c in header if c not in COLUMNS]
            if unknown:
                raise ManifestError(
                    f"{name}: line 1: unknown column(s) {', '.join(unknown)}; "
                    f"allowed: {', '.join(COLUMNS)}"
                )
            for row in reader:
                rowno = reader.line_num  # physical line, counting the header as line 1
                errors.extend(
                    f"{name}: row {rowno}: {msg}"
                    for msg in _add_row(drafts, row, rowno, base, existing_ids)
                )
    except UnicodeDecodeError as e:
        raise ManifestError(f"{name}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except csv.Error as e:
        raise ManifestError(f"{name}: malformed CSV: {e}") from e
    if not drafts and not errors:
        errors.append(f"{name}: no rows")
    if errors:
        raise ManifestError("\n".join(errors))
    return list(drafts.values())


def _add_row(
    drafts: dict[str, _Draft], row: dict[str, str | None], rowno: int, base: Path,
    existing_ids: set[str],
) -> list[str]:  # fmt: skip
    """Merge one manifest row into its draft case; return the problems found."""
    if None in row:
        return ["more fields than the header has"]
    get = {k: (v or "").strip() for k, v in row.items()}
    problems: list[str] = []
    case_id = get.get("case_id", "")
    if not case_id:
        return ["case_id is empty"]
    if not case_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        return [f"case_id {case_id!r} may only hold letters, digits, '-', '_' and '.'"]
    if case_id in existing_ids:
        return [f"case_id {case_id!r} already exists in the cohort"]
    draft = drafts.setdefault(case_id, _Draft(case_id, rowno))

    label = get.get("label", "")
    if label and label not in CANCER_TYPES:
        problems.append(f"label {label!r} is not one of {', '.join(CANCER_TYPES)}")
    stage = get.get("stage", "")
    if stage and stage not in STAGES:
        problems.append(f"stage {stage!r} is not one of {', '.join(STAGES)}")
    split = get.get("split", "") or draft.split
    if split not in SPLITS:
        problems.append(f"split {split!r} is not one of {', '.join(SPLITS)}")
    for attr, value in (("label", label), ("subtype", get.get("subtype", "")), ("stage", stage)):
        if value and getattr(draft, attr) and getattr(draft, attr) != value:
            problems.append(f"{attr} {value!r} contradicts {getattr(draft, attr)!r} "
                            f"given on row {draft.first_row}")  # fmt: skip
        elif value:
            setattr(draft, attr, value)
    draft.split = split

    for value in filter(None, (p.strip() for p in get.get("tile_paths", "").split(";"))):
        path = _resolve(base, value)
        if not path.is_file():
            problems.append(f"tile {value!r} not found")
        elif reason := _check_image(path):
            problems.append(reason)
        else:
            draft.tiles.append(path)
    for attr, suffixes in (("slide_path", SLIDE_SUFFIXES), ("vcf_path", VCF_SUFFIXES)):
        value = get.get(attr, "")
        if not value:
            continue
        path = _resolve(base, value)
        if not path.is_file():
            problems.append(f"{attr} {value!r} not found")
        elif not path.name.lower().endswith(suffixes):
            problems.append(f"{attr} {value!r} must end with one of {', '.join(suffixes)}")
        else:
            setattr(draft, attr.removesuffix("_path"), path)

    text, lang = get.get("note_text", ""), get.get("note_lang", "")
    if text or lang:
        if not text:
            problems.append("note_lang is given but note_text is empty")
        elif lang not in LANGUAGES:
            problems.append(f"note_lang {lang!r} is not one of {', '.join(LANGUAGES)}")
        elif len(text) > MAX_NOTE_CHARS:
            problems.append(f"note_text has {len(text)} characters (limit {MAX_NOTE_CHARS})")
        else:
            draft.notes.append((lang, text))
    return problems


def import_manifest(manifest: Path, cohort_dir: Path) -> tuple[Case, ...]:
    """Validate `manifest`, copy its files into the cohort and append its cases.

    Files are copied (not referenced) so that the workspace stays whole if the originals move;
    the case list is rewritten atomically, so a failed import leaves the cohort unchanged.
    """
    cohort_dir = Path(cohort_dir)
    existing = (
        {c.case_id for c in load_cases(cohort_dir)} if (cohort_dir / CASES_FILE).exists() else set()
    )
    drafts = read_manifest(manifest, existing)

    created: list[Path] = []  # case folders this import made, removed again if it fails
    try:
        imported = [_import_case(d, cohort_dir, created) for d in drafts]
        if not (cohort_dir / CASES_FILE).exists():
            (cohort_dir / CASES_FILE).touch()
        target = cohort_dir / IMPORTED_FILE
        with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as f:
            if target.exists():
                f.write(target.read_text(encoding="utf-8"))
            for case in imported:
                f.write(json.dumps(case.to_dict(), ensure_ascii=False) + "\n")
    except BaseException:
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return tuple(imported)


def _import_case(d: _Draft, cohort_dir: Path, created: list[Path]) -> Case:
    """Copy one validated case's files into the cohort; the Case that records them."""
    folder = Path("imported") / d.case_id
    if not (cohort_dir / folder).exists():
        created.append(cohort_dir / folder)
    (cohort_dir / folder).mkdir(parents=True, exist_ok=True)

    def copy(src: Path) -> str:
        rel = folder / src.name
        shutil.copy2(src, cohort_dir / rel)
        return rel.as_posix()

    return Case(
        case_id=d.case_id,
        cancer_type=d.label,
        label=d.label,
        subtype=d.subtype,
        stage=d.stage,
        grade=0,
        age=0,
        sex="",
        split=d.split,
        notes=tuple(
            Note(lang=lang, kind="clinic_note", template_id="", text=text) for lang, text in d.notes
        ),
        tile_paths=tuple(copy(p) for p in d.tiles),
        slide_path=copy(d.slide) if d.slide else "",
        vcf_path=copy(d.vcf) if d.vcf else "",
        source="imported",
    )
