"""Clinical notes of a case in every language, rendered from parallel templates.

`assets/notes/<lang>.json` holds, per note kind, templates whose ids are shared across
languages (template "07" in Portuguese says what "07" says in English, in Portuguese form),
each marked "train" or "test", plus the language's phrase banks for the slot renderings and
its abbreviations. `assets/notes/README.md` describes the format.

A case's notes are parallel: the choices that change content (which template, how the
diagnosis is named, which fields are missing, whether the prior cancer is mentioned) are
drawn once per note kind and shared by every language; only wording differs per language
(template text, phrase variants, lexicon synonyms, abbreviations and typos).

Template syntax: `{slot}` is filled from the facts; `{Slot}` is the same slot with its first
letter capitalised; `[ ... ]` is an optional group, left out when any slot inside it is empty
(no negative genes, no prior cancer, a field dropped as missing). A line left blank by
dropped groups is removed.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.data.lexicon import Lexicon
from core.data.schema import (
    BIOMARKER_STATUSES,
    BIOMARKERS,
    CANCER_TYPES,
    DRIVER_GENES,
    LANGUAGES,
    NOTE_KINDS,
    STAGES,
    SUBTYPES,
    Note,
    is_histology,
)
from core.errors import ConfigError, InputError

TEMPLATE_SPLITS: tuple[str, ...] = ("train", "test")
# Variant kinds a driver event may have: oncology.DRIVER_KINDS plus HOTSPOT. Each has a
# VARKIND:<kind> lexicon concept except those in KINDS_WITHOUT_TERM; WILDTYPE is a negative
# result and comes in through NoteFacts.negative_genes instead.
DRIVER_KINDS: tuple[str, ...] = (
    "MISSENSE", "NONSENSE", "FRAMESHIFT", "INFRAME_DELETION", "SPLICE", "AMPLIFICATION",
    "FUSION", "DELETION", "PROMOTER", "HOTSPOT",
)  # fmt: skip
KINDS_WITHOUT_TERM: frozenset[str] = frozenset({"PROMOTER"})
# Kinds whose change is a protein change, written with or without "p." ("p.V600E", "V600E").
PROTEIN_KINDS: frozenset[str] = frozenset(
    {"MISSENSE", "NONSENSE", "FRAMESHIFT", "INFRAME_DELETION", "HOTSPOT"}
)
SITES: tuple[str, ...] = (
    "BREAST", "LUNG", "COLON", "RECTUM", "PANCREAS", "SKIN", "BRAIN", "PROSTATE", "THYROID",
    "KIDNEY", "OVARY", "CERVIX", "HEAD_NECK", "ORAL_CAVITY", "LARYNX", "OROPHARYNX", "LIVER",
    "SOFT_TISSUE", "RETROPERITONEUM", "UTERUS", "LYMPH_NODE", "BONE", "PLEURA", "PERITONEUM",
    "ADRENAL",
)  # fmt: skip
# How a note names the diagnosis; each mode's phrases use exactly these slots (a tuple, so
# that terms are drawn in a fixed order).
DX_SLOTS: dict[str, tuple[str, ...]] = {
    "type": ("type",),
    "site_morph": ("site", "morph"),
    "subtype": ("subtype",),
    "subtype_site": ("subtype", "site"),
}
# How the microscopy findings follow the diagnosis; punctuation only, so one list serves
# every language.
HISTOLOGY_PATTERNS: tuple[str, ...] = ("{dx} ({findings})", "{dx}; {findings}", "{dx}, {findings}")
# Types whose morphology is their name ("glioblastoma, NOS"): site + morphology would name
# the type anyway, and reads badly, so these notes name the type.
MORPHOLOGY_IS_TYPE: frozenset[str] = frozenset({"GBM", "LIHC"})
# Fields a note may leave out; the cancer type always stays inferable (see _note_choices).
OMITTABLE: tuple[str, ...] = ("stage", "grade", "site")

# Slot -> the fact it reports; templates with one id must report the same facts in every
# language. Sex forms (`sex`, `sex_abbr` and language-specific ones) report demographics.
SLOT_FACTS: dict[str, str] = {
    "patient": "demographics", "age": "demographics",
    "dx": "dx", "site": "site", "morph": "morph",
    "stage": "stage", "stage_v": "stage", "grade": "grade", "grade_v": "grade",
    "drivers": "drivers", "negatives": "negatives", "neg_genes": "negatives",
    "biomarkers": "biomarkers", "distractor": "distractor", "mets": "mets",
    "met_sites": "mets", "plan": "plan",
}  # fmt: skip
# Slots that are empty for many cases, so they may only appear inside an optional group.
OPTIONAL_SLOTS: frozenset[str] = frozenset(
    {"negatives", "neg_genes", "biomarkers", "distractor", "mets", "met_sites"}
)
REQUIRED_SLOTS: frozenset[str] = frozenset({"dx", "drivers"})
# Slots whose field may be missing; each has placeholders in phrases.missing.
MISSABLE_SLOTS: frozenset[str] = frozenset({"stage", "stage_v", "grade", "grade_v", "site"})

_NOTES_DIR = Path(__file__).resolve().parents[2] / "assets" / "notes"
_SLOT = re.compile(r"\{([A-Za-z_]+)\}")
# Words a typo may hit: lower-case letters only, so gene symbols, protein changes, numbers
# and abbreviations are never touched.
_MIN_TYPO_LEN = 4
# Shorter text is a separator: no abbreviation key (shortest: "com", "mit") or typo fits.
_MIN_NOISY_LEN = 3
# "neg." or "J." before a full stop; leader dots ("Grade ......") are left alone.
_DOUBLE_STOP = re.compile(r"(?<=[^\W\d_]\.)\.(?!\.)")
# Abbreviations match whole words; Devanagari vowel signs count as word characters.
_WORD_CHARS = r"\w\u0900-\u097F"


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Anatomy:
    """Where a cancer type arises and what it looks like, as weighted lexicon concept ids."""

    sites: tuple[tuple[str, float], ...]  # (SITE:<id>, weight)
    morphs: tuple[tuple[str, float], ...]  # (MORPH:<id>, weight)


def _only(cid: str) -> tuple[tuple[str, float], ...]:
    return ((cid, 1.0),)


_SCC = _only("MORPH:SQUAMOUS_CELL_CARCINOMA")
TYPE_ANATOMY: dict[str, Anatomy] = {
    "BRCA": Anatomy(
        _only("SITE:BREAST"),
        (("MORPH:DUCTAL_CARCINOMA", 0.85), ("MORPH:LOBULAR_CARCINOMA", 0.15)),
    ),
    "LUAD": Anatomy(_only("SITE:LUNG"), _only("MORPH:ADENOCARCINOMA")),
    "LUSC": Anatomy(_only("SITE:LUNG"), _SCC),
    "COAD": Anatomy((("SITE:COLON", 0.75), ("SITE:RECTUM", 0.25)), _only("MORPH:ADENOCARCINOMA")),
    "PAAD": Anatomy(
        _only("SITE:PANCREAS"),
        (("MORPH:DUCTAL_ADENOCARCINOMA", 0.8), ("MORPH:ADENOCARCINOMA", 0.2)),
    ),
    "SKCM": Anatomy(_only("SITE:SKIN"), _only("MORPH:MELANOMA")),
    "GBM": Anatomy(_only("SITE:BRAIN"), _only("MORPH:GLIOBLASTOMA")),
    "PRAD": Anatomy(
        _only("SITE:PROSTATE"),
        (("MORPH:ACINAR_ADENOCARCINOMA", 0.7), ("MORPH:ADENOCARCINOMA", 0.3)),
    ),
    "THCA": Anatomy(_only("SITE:THYROID"), _only("MORPH:PAPILLARY_CARCINOMA")),
    "KIRC": Anatomy(_only("SITE:KIDNEY"), _only("MORPH:CLEAR_CELL_CARCINOMA")),
    "OV": Anatomy(_only("SITE:OVARY"), _only("MORPH:SEROUS_CARCINOMA")),
    "CESC": Anatomy(_only("SITE:CERVIX"), _SCC),
    "HNSC": Anatomy(
        (("SITE:ORAL_CAVITY", 0.5), ("SITE:LARYNX", 0.3), ("SITE:OROPHARYNX", 0.2)), _SCC
    ),
    "LIHC": Anatomy(_only("SITE:LIVER"), _only("MORPH:HEPATOCELLULAR_CARCINOMA")),
    "SARC": Anatomy(
        (("SITE:SOFT_TISSUE", 0.5), ("SITE:RETROPERITONEUM", 0.3), ("SITE:UTERUS", 0.2)),
        _only("MORPH:SARCOMA"),
    ),
}
# Subtypes whose site or morphology differs from their type's.
SUBTYPE_ANATOMY: dict[str, Anatomy] = {
    "CESC_ADENO": Anatomy(_only("SITE:CERVIX"), _only("MORPH:ADENOCARCINOMA")),
    "HNSC_HPVPOS": Anatomy(
        (("SITE:OROPHARYNX", 0.8), ("SITE:ORAL_CAVITY", 0.1), ("SITE:LARYNX", 0.1)), _SCC
    ),
    "SARC_LMS": Anatomy(
        (("SITE:UTERUS", 0.4), ("SITE:RETROPERITONEUM", 0.3), ("SITE:SOFT_TISSUE", 0.3)),
        _only("MORPH:LEIOMYOSARCOMA"),
    ),
    "SARC_DDLPS": Anatomy(
        (("SITE:RETROPERITONEUM", 0.8), ("SITE:SOFT_TISSUE", 0.2)), _only("MORPH:LIPOSARCOMA")
    ),
    "SARC_UPS": Anatomy(
        (("SITE:SOFT_TISSUE", 0.85), ("SITE:RETROPERITONEUM", 0.15)),
        _only("MORPH:PLEOMORPHIC_SARCOMA"),
    ),
}


def anatomy(cancer_type: str, subtype: str = "") -> Anatomy:
    """Primary sites and morphologies of a type, refined by its subtype where that matters."""
    return SUBTYPE_ANATOMY.get(subtype) or TYPE_ANATOMY[cancer_type]


@dataclass(frozen=True)
class NoteFacts:
    """What the notes of one case report; the same facts feed every language."""

    cancer_type: str  # one of CANCER_TYPES
    subtype: str  # one of SUBTYPES[cancer_type], or ""
    stage: str  # one of STAGES, or "" when unknown
    grade: int  # 1-3, 0 when unknown
    age: int
    sex: str  # "F" or "M"
    drivers: tuple[tuple[str, str, str], ...] = ()  # (gene, kind in DRIVER_KINDS, protein change)
    negative_genes: tuple[str, ...] = ()  # tested and wild-type: rendered as negations
    biomarkers: tuple[tuple[str, str], ...] = ()  # (BIOMARKER id, status)
    distractor_type: str = ""  # TYPE code of an unrelated prior cancer, or ""
    metastatic_sites: tuple[str, ...] = ()  # SITE:<id> concept ids (bare ids accepted)
    # (TIL level, necrosis level) the slide shows (schema.TIL_LEVELS, NECROSIS_LEVELS), or ()
    histology: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def bad(reason: str) -> InputError:
            return InputError(f"note facts: {reason}")

        if self.cancer_type not in CANCER_TYPES:
            raise bad(f"unknown cancer type {self.cancer_type!r}")
        if self.subtype and self.subtype not in SUBTYPES[self.cancer_type]:
            raise bad(f"subtype {self.subtype!r} is not one of {self.cancer_type}'s")
        if self.stage and self.stage not in STAGES:
            raise bad(f"unknown stage {self.stage!r}")
        if self.grade not in (0, 1, 2, 3):
            raise bad(f"grade must be 0-3, got {self.grade!r}")
        if self.sex not in ("F", "M"):
            raise bad(f"sex must be 'F' or 'M', got {self.sex!r}")
        for gene, kind, _ in self.drivers:
            if gene not in DRIVER_GENES or kind not in DRIVER_KINDS:
                raise bad(f"driver ({gene!r}, {kind!r}) needs a known gene and kind")
        if not set(self.negative_genes) <= set(DRIVER_GENES):
            raise bad(f"unknown negative genes in {self.negative_genes!r}")
        for marker, status in self.biomarkers:
            if marker not in BIOMARKERS or status not in BIOMARKER_STATUSES:
                raise bad(f"biomarker ({marker!r}, {status!r}) needs a known id and status")
        if self.distractor_type and self.distractor_type not in CANCER_TYPES:
            raise bad(f"unknown distractor type {self.distractor_type!r}")
        sites = tuple(s if s.startswith("SITE:") else f"SITE:{s}" for s in self.metastatic_sites)
        if any(s[5:] not in SITES for s in sites):
            raise bad(f"unknown metastatic sites in {self.metastatic_sites!r}")
        object.__setattr__(self, "metastatic_sites", sites)
        if not is_histology(self.histology):
            raise bad(f"histology must be (TIL level, necrosis level), got {self.histology!r}")


@dataclass(frozen=True)
class NoiseConfig:
    """How messy notes are. Rates are probabilities in [0, 1]."""

    abbreviation_rate: float = 0.3  # each abbreviable phrase ("patient" -> "pt") is shortened
    typo_rate: float = 0.01  # each lower-case word of 4+ letters gets one swap/drop/double
    missing_rate: float = 0.15  # stage, grade and site are each left out of a note
    placeholder_rate: float = 0.5  # a missing field reads "not reported" instead of vanishing
    type_named_rate: float = 0.45  # the note names the cancer type itself ...
    subtype_named_rate: float = 0.2  # ... or its subtype; otherwise only site + morphology
    subtype_site_rate: float = 0.5  # a named subtype comes with its site: "luminal A (breast)"
    distractor_rate: float = 0.9  # a note mentions the case's prior cancer, when it has one
    protein_prefix_flip: float = 0.3  # "p.V600E" <-> "V600E": labs write either
    # The note states the slide's TILs and necrosis after the diagnosis (each finding is then
    # left out at missing_rate): pathology reports usually do, other notes less often.
    histology_report_rate: float = 0.85
    histology_other_rate: float = 0.35

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"NoiseConfig.{name} must be in [0, 1], got {value!r}")
        if self.type_named_rate + self.subtype_named_rate > 1.0:
            raise ConfigError("NoiseConfig: type_named_rate + subtype_named_rate exceeds 1")


# ----------------------------------------------------------------------- templates


@dataclass(frozen=True)
class NoteTemplate:
    """One note template; `text` keeps the slot syntax, lines joined by newlines."""

    template_id: str  # "<lang>/<kind>/<id>"
    lang: str
    kind: str  # one of NOTE_KINDS
    split: str  # one of TEMPLATE_SPLITS
    text: str

    @property
    def local_id(self) -> str:
        """The id shared by the parallel templates of every language ("07")."""
        return self.template_id.rsplit("/", 1)[1]


@dataclass(frozen=True)
class _Slot:
    name: str
    cap: bool  # written `{Name}`: capitalise the first letter of the value


# A parsed line: literal text, slots, and optional groups (tuples of literals and slots).
_Item = str | _Slot | tuple[str | _Slot, ...]


def _parse_flat(text: str) -> tuple[str | _Slot, ...]:
    items: list[str | _Slot] = []
    pos = 0
    for m in _SLOT.finditer(text):
        if m.start() > pos:
            items.append(text[pos : m.start()])
        name = m.group(1)
        items.append(_Slot(name[0].lower() + name[1:], name[0].isupper()))
        pos = m.end()
    if pos < len(text):
        items.append(text[pos:])
    return tuple(items)


@functools.cache
def _parse_template(text: str) -> tuple[tuple[_Item, ...], ...]:
    """Lines of items; raises ValueError on unbalanced or nested brackets and stray braces."""
    lines = []
    for line in text.split("\n"):
        items: list[_Item] = []
        for k, part in enumerate(re.split(r"[\[\]]", line)):
            if "{" in _SLOT.sub("", part) or "}" in _SLOT.sub("", part):
                raise ValueError(f"malformed slot in {part!r}")
            if not part:
                continue
            flat = _parse_flat(part)
            items.extend(flat if k % 2 == 0 else (flat,))
        depth = 0
        for ch in line:
            depth += 1 if ch == "[" else -1 if ch == "]" else 0
            if depth not in (0, 1):
                raise ValueError(f"unbalanced or nested brackets in {line!r}")
        if depth:
            raise ValueError(f"unclosed bracket in {line!r}")
        lines.append(tuple(items))
    return tuple(lines)


def _template_slots(lines: tuple[tuple[_Item, ...], ...]) -> tuple[set[str], set[str]]:
    """(slots outside groups, slots inside groups) of a parsed template."""
    outside: set[str] = set()
    inside: set[str] = set()
    for line in lines:
        for item in line:
            if isinstance(item, _Slot):
                outside.add(item.name)
            elif isinstance(item, tuple):
                inside.update(s.name for s in item if isinstance(s, _Slot))
    return outside, inside


def template_facts(template: NoteTemplate, lang_sex_forms: Sequence[str] = ()) -> frozenset[str]:
    """The facts a template reports (see SLOT_FACTS); sex-form slots count as demographics."""
    outside, inside = _template_slots(_parse_template(template.text))
    return frozenset(
        SLOT_FACTS.get(name, "demographics" if name in lang_sex_forms else name)
        for name in outside | inside
    )


# ------------------------------------------------------------------- phrase banks


@dataclass(frozen=True)
class _Language:
    """A parsed `<lang>.json`: templates, phrase banks and the abbreviation matcher."""

    lang: str
    templates: dict[str, tuple[NoteTemplate, ...]]  # kind -> templates in file order
    by_id: dict[tuple[str, str], NoteTemplate]  # (kind, local id) -> template
    phrases: dict[str, Any]
    sex_forms: dict[str, dict[str, tuple[str, ...]]]  # slot -> sex -> variants
    drivers_any: dict[str, tuple[str, ...]]  # kind -> patterns, for a known protein change
    drivers_without_protein: dict[str, tuple[str, ...]]  # kind -> patterns without {protein}
    abbreviations: dict[str, tuple[str, ...]]
    abbreviation_re: re.Pattern[str] | None


_PHRASE_KEYS = frozenset(
    {"list_sep", "list_last", "sex_forms", "patient", "dx", "driver", "no_drivers", "negation",
     "biomarker", "status", "status_by_marker", "distractor", "mets", "missing"}
)  # fmt: skip
_BANK_SLOTS: dict[str, frozenset[str]] = {
    "driver": frozenset({"gene", "protein", "kind"}),
    "negation": frozenset({"genes"}),
    "biomarker": frozenset({"marker", "status"}),
    "distractor": frozenset({"prior", "year"}),
    "mets": frozenset({"sites"}),
}


def notes_dir() -> Path:
    """The shipped templates: <repo root>/assets/notes/."""
    return _NOTES_DIR


def _variants(value: Any, where: str) -> tuple[str, ...]:
    if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
        raise ConfigError(f"{where}: expected a non-empty list of non-empty strings")
    return tuple(value)


def _check_bank_slots(
    patterns: Sequence[str], allowed: frozenset[str], where: str, exact: bool = False
) -> None:
    for p in patterns:
        used = {m.group(1) for m in _SLOT.finditer(p)}
        if not used <= allowed or (exact and used != allowed):
            raise ConfigError(f"{where}: {p!r} must use {'exactly' if exact else 'only'} "
                              f"the slots {sorted(allowed)}")  # fmt: skip
        if "{" in _SLOT.sub("", p) or "}" in _SLOT.sub("", p) or "[" in p or "]" in p:
            raise ConfigError(f"{where}: {p!r} has a stray brace or bracket")


@functools.cache
def _language(lang: str) -> _Language:
    path = _NOTES_DIR / f"{lang}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no note templates for language {lang!r} ({path})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path.name}: cannot read: {exc}") from exc
    return _parse_language(lang, data, path.name)


def _parse_language(lang: str, data: Mapping[str, Any], source: str) -> _Language:
    unknown = set(data) - {"lang", "phrases", "abbreviations", "templates"}
    if unknown or data.get("lang") != lang:
        raise ConfigError(f"{source}: needs lang={lang!r}; unknown keys {sorted(unknown)}")
    ph = dict(data.get("phrases", {}))
    if set(ph) != _PHRASE_KEYS:
        raise ConfigError(
            f"{source}: phrases missing {sorted(_PHRASE_KEYS - set(ph))}, "
            f"unknown {sorted(set(ph) - _PHRASE_KEYS)}"
        )
    for key in ("patient", "no_drivers", "biomarker", "distractor", "mets"):
        ph[key] = _variants(ph[key], f"{source}: phrases.{key}")
    sex_forms = {
        slot: {sex: _variants(forms.get(sex), f"{source}: sex_forms.{slot}.{sex}") for sex in "FM"}
        for slot, forms in ph["sex_forms"].items()
    }
    if not {"sex", "sex_abbr"} <= set(sex_forms) or set(sex_forms) & set(SLOT_FACTS):
        raise ConfigError(f"{source}: sex_forms needs sex and sex_abbr, and no fact slot names")
    _check_bank_slots(ph["patient"], frozenset({"age", *sex_forms}), f"{source}: patient")
    if set(ph["dx"]) != set(DX_SLOTS):
        raise ConfigError(f"{source}: phrases.dx needs exactly {sorted(DX_SLOTS)}")
    ph["dx"] = {mode: _variants(ph["dx"][mode], f"{source}: dx.{mode}") for mode in DX_SLOTS}
    for mode, slots in DX_SLOTS.items():
        _check_bank_slots(ph["dx"][mode], frozenset(slots), f"{source}: dx.{mode}", exact=True)
    if set(ph["driver"]) != set(DRIVER_KINDS):
        raise ConfigError(f"{source}: phrases.driver needs exactly {DRIVER_KINDS}")
    with_p, without_p = {}, {}
    for kind in DRIVER_KINDS:
        pats = _variants(ph["driver"][kind], f"{source}: driver.{kind}")
        _check_bank_slots(pats, _BANK_SLOTS["driver"], f"{source}: driver.{kind}")
        with_p[kind] = pats
        without_p[kind] = tuple(p for p in pats if "{protein}" not in p)
        if not without_p[kind]:
            raise ConfigError(f"{source}: driver.{kind} needs a pattern without {{protein}}")
        if kind in KINDS_WITHOUT_TERM and any("{kind}" in p for p in pats):
            raise ConfigError(f"{source}: driver.{kind} has no lexicon term for {{kind}}")
    if set(ph["negation"]) != {"one", "many"}:
        raise ConfigError(f"{source}: phrases.negation needs exactly 'one' and 'many'")
    ph["negation"] = {n: _variants(v, f"{source}: negation.{n}") for n, v in ph["negation"].items()}
    for n in ("one", "many"):
        _check_bank_slots(ph["negation"][n], _BANK_SLOTS["negation"], f"{source}: negation.{n}")
    for key in ("biomarker", "distractor", "mets"):
        _check_bank_slots(ph[key], _BANK_SLOTS[key], f"{source}: {key}")
    if set(ph["status"]) != set(BIOMARKER_STATUSES):
        raise ConfigError(f"{source}: phrases.status needs exactly {BIOMARKER_STATUSES}")
    ph["status"] = {s: _variants(v, f"{source}: status.{s}") for s, v in ph["status"].items()}
    overrides = {}
    for marker, by_status in ph["status_by_marker"].items():
        if marker not in BIOMARKERS or not set(by_status) <= set(BIOMARKER_STATUSES):
            raise ConfigError(f"{source}: status_by_marker.{marker}: unknown marker or status")
        for s, v in by_status.items():
            overrides[marker, s] = _variants(v, f"{source}: status_by_marker.{marker}.{s}")
    ph["status_by_marker"] = overrides
    if set(ph["missing"]) != set(MISSABLE_SLOTS):
        raise ConfigError(f"{source}: phrases.missing needs exactly {sorted(MISSABLE_SLOTS)}")
    ph["missing"] = {k: _variants(v, f"{source}: missing.{k}") for k, v in ph["missing"].items()}
    for key in ("list_sep", "list_last"):
        if not isinstance(ph[key], str) or not ph[key]:
            raise ConfigError(f"{source}: phrases.{key} must be a non-empty string")

    abbreviations = {
        k: _variants(v, f"{source}: abbreviations.{k}")
        for k, v in data.get("abbreviations", {}).items()
    }
    if any(len(k) < _MIN_NOISY_LEN for k in abbreviations):
        raise ConfigError(f"{source}: abbreviations need keys of {_MIN_NOISY_LEN}+ characters")
    abbreviation_re = None
    if abbreviations:
        alternatives = "|".join(re.escape(k) for k in sorted(abbreviations, key=len, reverse=True))
        abbreviation_re = re.compile(f"(?<![{_WORD_CHARS}])(?:{alternatives})(?![{_WORD_CHARS}])")

    templates = _parse_templates(lang, data.get("templates", {}), set(sex_forms), source)
    by_id = {(t.kind, t.local_id): t for ts in templates.values() for t in ts}
    return _Language(
        lang, templates, by_id, ph, sex_forms, with_p, without_p, abbreviations, abbreviation_re
    )


def _parse_templates(
    lang: str, raw: Mapping[str, Any], sex_forms: set[str], source: str
) -> dict[str, tuple[NoteTemplate, ...]]:
    if set(raw) != set(NOTE_KINDS):
        raise ConfigError(f"{source}: templates needs exactly the kinds {NOTE_KINDS}")
    known = set(SLOT_FACTS) | sex_forms
    out: dict[str, tuple[NoteTemplate, ...]] = {}
    for kind in NOTE_KINDS:
        seen: set[str] = set()
        parsed = []
        for entry in raw[kind]:
            local_id, split, lines = entry.get("id"), entry.get("split"), entry.get("text")
            where = f"{source}: {kind}/{local_id}"
            if set(entry) != {"id", "split", "text"} or not isinstance(local_id, str):
                raise ConfigError(f"{where}: needs exactly id (a string), split and text")
            if local_id in seen or split not in TEMPLATE_SPLITS:
                raise ConfigError(f"{where}: duplicate id or split not in {TEMPLATE_SPLITS}")
            seen.add(local_id)
            text = "\n".join(_variants(lines, f"{where}: text"))
            try:
                outside, inside = _template_slots(_parse_template(text))
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if not (outside | inside) <= known:
                raise ConfigError(f"{where}: unknown slots {sorted((outside | inside) - known)}")
            if not REQUIRED_SLOTS <= outside:
                raise ConfigError(f"{where}: needs {sorted(REQUIRED_SLOTS)} outside any group")
            if outside & OPTIONAL_SLOTS:
                raise ConfigError(f"{where}: {sorted(outside & OPTIONAL_SLOTS)} need a [group]")
            parsed.append(NoteTemplate(f"{lang}/{kind}/{local_id}", lang, kind, split, text))
        out[kind] = tuple(parsed)
    return out


def list_templates(lang: str, kind: str, split: str | None = None) -> tuple[NoteTemplate, ...]:
    """Templates of one language and note kind, of one split or all of them."""
    if kind not in NOTE_KINDS:
        raise ConfigError(f"unknown note kind {kind!r}; expected one of {NOTE_KINDS}")
    if split is not None and split not in TEMPLATE_SPLITS:
        raise ConfigError(f"unknown template split {split!r}; expected one of {TEMPLATE_SPLITS}")
    templates = _language(lang).templates[kind]
    return templates if split is None else tuple(t for t in templates if t.split == split)


def sex_form_slots(lang: str) -> tuple[str, ...]:
    """The sex-dependent slots a language defines (`sex`, `sex_abbr` and its own)."""
    return tuple(_language(lang).sex_forms)


# ----------------------------------------------------------------- shared choices


# Targeted drugs for actionable drivers, named in the plan of stage IV cases.
TARGETED_THERAPY: dict[str, tuple[str, ...]] = {
    "ERBB2": ("TX:TRASTUZUMAB",), "EGFR": ("TX:OSIMERTINIB",), "ALK": ("TX:ALECTINIB",),
    "ROS1": ("TX:ENTRECTINIB",), "RET": ("TX:SELPERCATINIB",), "MET": ("TX:CAPMATINIB",),
    "BRAF": ("TX:DABRAFENIB", "TX:TRAMETINIB"), "BRCA1": ("TX:OLAPARIB",),
    "BRCA2": ("TX:OLAPARIB",), "KIT": ("TX:IMATINIB",),
}  # fmt: skip
# Biomarker results that make immunotherapy the plan of a stage IV case without a target.
_IMMUNO_MARKERS = frozenset({("PDL1", "positive"), ("PDL1", "high"), ("MSI", "high"),
                             ("TMB", "high")})  # fmt: skip
# Types treated with chemoradiation rather than surgery first at stage III.
_CHEMORADIATION_TYPES = frozenset({"LUSC", "HNSC", "CESC"})


def treatment_plan(facts: NoteFacts) -> tuple[str, ...]:
    """TX concept ids of a plausible plan: surgery early, targeted or systemic therapy late.

    A coarse sketch of standard care so that tumour boards recommend something coherent;
    it is not clinical guidance.
    """
    if facts.cancer_type == "GBM":  # Stupp protocol whatever the stage field says
        return ("TX:SURGERY", "TX:RADIOTHERAPY", "TX:TEMOZOLOMIDE")
    if facts.stage == "IV":
        for gene, _, _ in facts.drivers:
            if gene in TARGETED_THERAPY:
                return TARGETED_THERAPY[gene]
        if _IMMUNO_MARKERS & set(facts.biomarkers):
            return ("TX:IMMUNOTHERAPY",)
        return ("TX:CHEMOTHERAPY",)
    if facts.stage == "III" and facts.cancer_type in _CHEMORADIATION_TYPES:
        return ("TX:CHEMORADIOTHERAPY",)
    plan = ("TX:SURGERY", "TX:ADJUVANT_THERAPY") if facts.stage == "III" else ("TX:SURGERY",)
    if facts.cancer_type == "BRCA" and ("ER", "positive") in facts.biomarkers:
        # endocrine therapy by menopausal status, approximated by age
        plan += ("TX:TAMOXIFEN",) if facts.age < 50 else ("TX:LETROZOLE",)
    return plan


@dataclass(frozen=True)
class _CaseChoices:
    """Drawn once per case: one tumour has one site and one morphology in every note."""

    site: str  # SITE:<id>
    morph: str  # MORPH:<id>
    year: int  # year the prior (distractor) cancer was treated
    plan: tuple[str, ...]  # TX:<id>


@dataclass(frozen=True)
class _NoteChoices:
    """Drawn once per note kind and shared by every language."""

    dx_mode: str  # one of DX_SLOTS
    omitted: frozenset[str]  # fields of OMITTABLE left out
    placeholder: bool  # missing fields read "not reported" (else optional groups vanish)
    distractor: bool  # mention the prior cancer
    histology: tuple[str, ...] = ()  # microscopy findings (FINDING ids) stated after the dx


def _weighted(options: tuple[tuple[str, float], ...], rng: np.random.Generator) -> str:
    u = rng.random() * sum(w for _, w in options)
    for value, weight in options:
        u -= weight
        if u < 0:
            return value
    return options[-1][0]


def _case_choices(facts: NoteFacts, rng: np.random.Generator) -> _CaseChoices:
    anat = anatomy(facts.cancer_type, facts.subtype)
    year = 1995 + int(rng.random() * 25)
    return _CaseChoices(
        _weighted(anat.sites, rng), _weighted(anat.morphs, rng), year, treatment_plan(facts)
    )


def _note_choices(
    facts: NoteFacts, kind: str, noise: NoiseConfig, rng: np.random.Generator
) -> _NoteChoices:
    u = rng.random()
    if u < noise.type_named_rate:
        mode = "type"
    elif u < noise.type_named_rate + noise.subtype_named_rate and facts.subtype:
        mode = "subtype_site" if rng.random() < noise.subtype_site_rate else "subtype"
    else:
        mode = "type" if facts.cancer_type in MORPHOLOGY_IS_TYPE else "site_morph"
    omitted = {f for f in OMITTABLE if rng.random() < noise.missing_rate}
    if mode == "site_morph":
        omitted.discard("site")  # site + morphology is then the only clue to the type
    placeholder = rng.random() < noise.placeholder_rate
    distractor = bool(facts.distractor_type) and rng.random() < noise.distractor_rate
    rate = noise.histology_report_rate if kind == "pathology_report" else noise.histology_other_rate
    histology: tuple[str, ...] = ()
    if facts.histology and rng.random() < rate:
        histology = tuple(f for f in facts.histology if rng.random() >= noise.missing_rate)
    return _NoteChoices(mode, frozenset(omitted), placeholder, distractor, histology)


# ---------------------------------------------------------------------- rendering

# A rendered value: pieces of (text, protected). Protected text (lexicon terms, genes,
# protein changes, numbers) is never abbreviated or given typos.
_Pieces = list[tuple[str, bool]]
_MISSING: _Pieces = []  # sentinel identity: the field was left out of this note


@functools.cache
def _parse_pattern(pattern: str) -> tuple[str | _Slot, ...]:
    return _parse_flat(pattern)


class _Renderer:
    """Renders one note in one language; slot values are computed once, on first use."""

    def __init__(
        self,
        facts: NoteFacts,
        case: _CaseChoices,
        note: _NoteChoices,
        language: _Language,
        lexicon: Lexicon,
        rng: np.random.Generator,
        noise: NoiseConfig,
    ) -> None:
        self.facts, self.case, self.note = facts, case, note
        self.language, self.ph, self.lang = language, language.phrases, language.lang
        self.lexicon, self.rng, self.noise = lexicon, rng, noise
        self.values: dict[str, _Pieces] = {}

    # -- helpers

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.rng.random() * len(options))] if len(options) > 1 else options[0]

    def term(self, concept_id: str) -> _Pieces:
        return [(self.lexicon.term(concept_id, self.lang, self.rng), True)]

    def fill(self, pattern: str, values: Mapping[str, _Pieces]) -> _Pieces:
        out: _Pieces = []
        for item in _parse_pattern(pattern):
            if isinstance(item, str):
                out.append((item, False))
            else:
                out.extend(_capitalised(values[item.name]) if item.cap else values[item.name])
        return out

    def join(self, parts: list[_Pieces]) -> _Pieces:
        out: _Pieces = []
        for k, part in enumerate(parts):
            if k:
                last = k == len(parts) - 1
                out.append((self.ph["list_last"] if last else self.ph["list_sep"], False))
            out.extend(part)
        return out

    def genes(self, genes: Sequence[str]) -> _Pieces:
        return self.join([[(g, True)] for g in genes])

    # -- slots

    def value(self, name: str) -> _Pieces:
        v = self.values.get(name)
        if v is None:
            v = self.values[name] = self._compute(name)
        return v

    def _compute(self, name: str) -> _Pieces:
        compute: Callable[[], _Pieces] | None = getattr(self, f"_slot_{name}", None)
        if compute is not None:
            return compute()
        forms = self.language.sex_forms[name]  # templates are validated: a sex form
        return [(self.pick(forms[self.facts.sex]), False)]

    def _slot_age(self) -> _Pieces:
        return [(str(self.facts.age), True)]

    def _slot_patient(self) -> _Pieces:
        values = {name: self.value(name) for name in self.language.sex_forms}
        values["age"] = self.value("age")
        return self.fill(self.pick(self.ph["patient"]), values)

    def _slot_dx(self) -> _Pieces:
        mode = self.note.dx_mode
        concepts = {"type": f"TYPE:{self.facts.cancer_type}",
                    "subtype": f"SUBTYPE:{self.facts.subtype}",
                    "site": self.case.site, "morph": self.case.morph}  # fmt: skip
        values = {slot: self.term(concepts[slot]) for slot in DX_SLOTS[mode]}
        patterns = self.ph["dx"][mode]
        # A qualified term ("adenocarcinoma, NOS") misreads inside "... of the colon", so it
        # takes the first pattern, which keeps the site apart (brackets).
        if mode == "site_morph" and "," in values["morph"][0][0]:
            patterns = patterns[:1]
        dx = self.fill(self.pick(patterns), values)
        if not self.note.histology:
            return dx
        findings = self.join([self.term(f) for f in self.note.histology])
        return self.fill(self.pick(HISTOLOGY_PATTERNS), {"dx": dx, "findings": findings})

    def _shown(self, field: str) -> bool:
        """The field (one of OMITTABLE) has a value and this note keeps it."""
        known = {"stage": self.facts.stage, "grade": self.facts.grade, "site": True}[field]
        return bool(known) and field not in self.note.omitted

    def _slot_site(self) -> _Pieces:
        return self.term(self.case.site) if self._shown("site") else _MISSING

    def _slot_morph(self) -> _Pieces:
        return self.term(self.case.morph)

    def _slot_stage(self) -> _Pieces:
        return self.term(f"STAGE:{self.facts.stage}") if self._shown("stage") else _MISSING

    def _slot_stage_v(self) -> _Pieces:
        return [(self.facts.stage, True)] if self._shown("stage") else _MISSING

    def _slot_grade(self) -> _Pieces:
        return self.term(f"GRADE:{self.facts.grade}") if self._shown("grade") else _MISSING

    def _slot_grade_v(self) -> _Pieces:
        return [(str(self.facts.grade), True)] if self._shown("grade") else _MISSING

    def _slot_drivers(self) -> _Pieces:
        if not self.facts.drivers:
            return [(self.pick(self.ph["no_drivers"]), False)]
        parts = []
        for gene, kind, protein in self.facts.drivers:
            if kind in PROTEIN_KINDS and protein:
                if self.rng.random() < self.noise.protein_prefix_flip:
                    protein = protein[2:] if protein.startswith("p.") else f"p.{protein}"
            lang = self.language
            bank = lang.drivers_any if protein else lang.drivers_without_protein
            pattern = self.pick(bank[kind])
            values = {"gene": [(gene, True)], "protein": [(protein, True)]}
            if "{kind}" in pattern:
                values["kind"] = self.term(f"VARKIND:{kind}")
            parts.append(self.fill(pattern, values))
        return self.join(parts)

    def _slot_neg_genes(self) -> _Pieces:
        return self.genes(self.facts.negative_genes)

    def _slot_negatives(self) -> _Pieces:
        genes = self.facts.negative_genes
        if not genes:
            return []
        bank = self.ph["negation"]["one" if len(genes) == 1 else "many"]
        return self.fill(self.pick(bank), {"genes": self.value("neg_genes")})

    def _slot_biomarkers(self) -> _Pieces:
        parts = []
        for marker, status in self.facts.biomarkers:
            words = self.ph["status_by_marker"].get((marker, status)) or self.ph["status"][status]
            values = {"marker": self.term(f"BIOMARKER:{marker}"),
                      "status": [(self.pick(words), False)]}  # fmt: skip
            parts.append(self.fill(self.pick(self.ph["biomarker"]), values))
        return self.join(parts)

    def _slot_distractor(self) -> _Pieces:
        if not self.note.distractor:
            return []
        values = {"prior": self.term(f"TYPE:{self.facts.distractor_type}"),
                  "year": [(str(self.case.year), True)]}  # fmt: skip
        return self.fill(self.pick(self.ph["distractor"]), values)

    def _slot_met_sites(self) -> _Pieces:
        return self.join([self.term(s) for s in self.facts.metastatic_sites])

    def _slot_mets(self) -> _Pieces:
        if not self.facts.metastatic_sites:
            return []
        return self.fill(self.pick(self.ph["mets"]), {"sites": self.value("met_sites")})

    def _slot_plan(self) -> _Pieces:
        return self.join([self.term(t) for t in self.case.plan])

    # -- the note

    def slot(self, item: _Slot, in_group: bool) -> _Pieces:
        v = self.value(item.name)
        if v is _MISSING and (not in_group or self.note.placeholder):
            v = [(self.pick(self.ph["missing"][item.name]), False)]
        return _capitalised(v) if item.cap else v

    def render(self, template: NoteTemplate) -> str:
        lines = []
        for line in _parse_template(template.text):
            pieces: _Pieces = []
            for item in line:
                if isinstance(item, str):
                    pieces.append((item, False))
                elif isinstance(item, _Slot):
                    pieces.extend(self.slot(item, in_group=False))
                else:
                    group: _Pieces = []
                    for sub in item:
                        if isinstance(sub, str):
                            group.append((sub, False))
                            continue
                        v = self.slot(sub, in_group=True)
                        if not v:
                            break
                        group.extend(v)
                    else:
                        pieces.extend(group)
            text = self.noisy_line(pieces)
            if text.strip():
                lines.append(_DOUBLE_STOP.sub("", text.rstrip()))
        return "\n".join(lines)

    def noisy_line(self, pieces: _Pieces) -> str:
        """The line's text with noise applied to each run of unprotected pieces."""
        out: list[str] = []
        run: list[str] = []
        for text, protected in pieces:
            if not protected:
                run.append(text)
                continue
            if run:
                out.append(self.noisy("".join(run)))
                run = []
            out.append(text)
        if run:
            out.append(self.noisy("".join(run)))
        return "".join(out)

    def noisy(self, text: str) -> str:
        if len(text) < _MIN_NOISY_LEN:  # separators such as ", " or " | "
            return text
        rng, noise = self.rng, self.noise
        pattern = self.language.abbreviation_re
        if pattern is not None and noise.abbreviation_rate > 0:
            abbreviations = self.language.abbreviations

            def shorten(m: re.Match[str]) -> str:
                if rng.random() >= noise.abbreviation_rate:
                    return m.group()
                return self.pick(abbreviations[m.group()])

            text = pattern.sub(shorten, text)
        if noise.typo_rate > 0:
            words = text.split(" ")
            for k, w in enumerate(words):
                if len(w) >= _MIN_TYPO_LEN and w.isalpha() and w.islower():
                    if rng.random() < noise.typo_rate:
                        words[k] = _typo(w, rng)
            text = " ".join(words)
        return text


def _capitalised(pieces: _Pieces) -> _Pieces:
    if not pieces:
        return pieces
    text, protected = pieces[0]
    return [(text[:1].upper() + text[1:], protected), *pieces[1:]]


def _typo(word: str, rng: np.random.Generator) -> str:
    """Swap two neighbours, drop or double one letter; the first letter always stays."""
    i = 1 + int(rng.random() * (len(word) - 2))  # 1 .. len-2
    op = int(rng.random() * 3)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


# ---------------------------------------------------------------------------- API


def render_note(
    facts: NoteFacts,
    template: NoteTemplate,
    rng: np.random.Generator,
    lexicon: Lexicon,
    noise: NoiseConfig = NoiseConfig(),
) -> str:
    """One note from one template; the case-level choices are drawn afresh from `rng`."""
    case = _case_choices(facts, rng)
    note = _note_choices(facts, template.kind, noise, rng)
    return _Renderer(facts, case, note, _language(template.lang), lexicon, rng, noise).render(
        template
    )


def render_case_notes(
    facts: NoteFacts,
    template_split: str,
    rng: np.random.Generator,
    lexicon: Lexicon,
    languages: Sequence[str] = LANGUAGES,
    noise: NoiseConfig = NoiseConfig(),
) -> tuple[Note, ...]:
    """One note per language and kind, parallel across languages, from one template split."""
    if not languages:
        raise ConfigError("render_case_notes needs at least one language")
    case = _case_choices(facts, rng)
    notes = []
    for kind in NOTE_KINDS:
        candidates = list_templates(languages[0], kind, template_split)
        local_id = candidates[int(rng.random() * len(candidates))].local_id
        note = _note_choices(facts, kind, noise, rng)
        for lang in languages:
            language = _language(lang)
            template = language.by_id.get((kind, local_id))
            if template is None or template.split != template_split:
                raise ConfigError(f"{lang}.json: no {template_split} template {kind}/{local_id}")
            text = _Renderer(facts, case, note, language, lexicon, rng, noise).render(template)
            notes.append(Note(lang, kind, template.template_id, text))
    return tuple(notes)
