"""Rendering summary facts into a plain-language summary, sentence by sentence.

Every sentence comes from the phrase bank of the language (`assets/summaries/<lang>.json`),
with slots filled from the facts, and carries the ids of the facts it was written from. The
only text not from a phrase bank is what a clinician typed (the note and the prognosis field),
marked `generated=False`. Terms that need explaining get a lay definition from the bank's
glossary in a "words to know" section. Nothing is machine-translated at run time.

Drug names are the one thing taken from elsewhere: the lexicon's preferred term in the
language when it has the drug (Portuguese "trastuzumabe", Hindi in Devanagari), else the
international name as CIViC writes it.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from core.data.lexicon import default_lexicon
from core.data.schema import LANGUAGES
from core.errors import ConfigError
from core.summaries.facts import SummaryFacts, TreatmentOption

BANK_DIR = Path(__file__).resolve().parents[2] / "assets" / "summaries"

# Sections in reading order; "list" sections render as bullet points.
SECTIONS: tuple[str, ...] = (
    "diagnosis", "tests", "treatment", "image", "next", "questions", "clinician", "prognosis",
    "words",
)  # fmt: skip
LIST_SECTIONS = frozenset({"next", "questions", "words"})
# Banner of a summary that is not approved: English, whatever the language, so staff who do
# not read the patient's language can see it (the bank adds a line in that language).
DRAFT_MARK = "DRAFT — not approved for patient use"

# Phrase key -> glossary terms its sentence uses (explained in "words to know").
_STAGE_TERMS = {"stage.I": ("stage",), "stage.II": ("stage", "lymph_nodes"),
                "stage.III": ("stage", "lymph_nodes"), "stage.IV": ("stage",)}  # fmt: skip
_FIXED_TERMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    **_STAGE_TERMS,
    "tests.intro": ("tumour",),
    "driver.actionable": ("gene",),
    "driver.other": ("gene",),
    "option.targeted_therapy.gene": ("targeted_therapy", "gene"),
})  # fmt: skip
NOTICE_FACT = "notice"  # trace of the fixed notices (intro, disclaimer, section glue)


def glossary_terms(key: str) -> tuple[str, ...]:
    """Glossary terms the phrase `key` uses."""
    if key in _FIXED_TERMS:
        return _FIXED_TERMS[key]
    parts = key.split(".")
    if parts[0] == "biomarker":  # biomarker.HER2.positive
        return (parts[1],)
    if parts[0] == "option" and len(parts) == 2:  # variants (iodine, thyroid) name no category
        return (parts[1],)
    if parts[0] == "grade":
        return ("grade",)
    return ()


def drug_name(name: str, lang: str) -> str:
    """A drug's name in `lang`: the lexicon's preferred term, else the name as given."""
    concept_id = "TX:" + re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
    concept = default_lexicon().concepts.get(concept_id)  # built once per process (0.4 s)
    return concept.preferred(lang) if concept else name


@dataclass(frozen=True)
class PhraseBank:
    """The phrases and lay glossary of one language."""

    lang: str
    phrases: Mapping[str, str]
    glossary: Mapping[str, tuple[str, str]]  # term id -> (term as written, lay definition)

    @classmethod
    def load(cls, lang: str, bank_dir: Path | None = None) -> PhraseBank:
        """The bank of `lang` from `bank_dir` (default: the shipped assets/summaries)."""
        return _load_bank(lang, Path(bank_dir) if bank_dir else BANK_DIR)

    def phrase(self, key: str, **slots: str) -> str:
        """The phrase `key` with its slots filled; ConfigError when the bank lacks it."""
        try:
            text = self.phrases[key]
        except KeyError:
            raise ConfigError(f"summary phrase bank {self.lang}: no phrase {key!r}") from None
        try:
            return text.format(**slots)
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"summary phrase bank {self.lang}: {key!r}: bad slot {e}") from e

    def term(self, term_id: str) -> tuple[str, str]:
        try:
            return self.glossary[term_id]
        except KeyError:
            raise ConfigError(
                f"summary phrase bank {self.lang}: no glossary term {term_id!r}"
            ) from None


def placeholders(text: str) -> frozenset[str]:
    """The `{slot}` names of a phrase."""
    return frozenset(f for _, f, _, _ in string.Formatter().parse(text) if f)


@functools.cache
def _load_bank(lang: str, bank_dir: Path) -> PhraseBank:
    if lang not in LANGUAGES:
        raise ConfigError(f"no summary phrase bank for {lang!r}; languages: {', '.join(LANGUAGES)}")
    path = bank_dir / f"{lang}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        phrases, glossary = data["phrases"], data["glossary"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in phrases.items()):
            raise ValueError("phrases must map strings to strings")
        terms = {k: (v["term"], v["definition"]) for k, v in glossary.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: not a valid summary phrase bank: {e}") from e
    return PhraseBank(lang, MappingProxyType(dict(phrases)), MappingProxyType(terms))


# ----------------------------------------------------------------------------- the summary


@dataclass(frozen=True)
class Sentence:
    """One unit of a summary (one or two short sentences) and the facts it came from."""

    section: str  # one of SECTIONS, or "intro" / "disclaimer"
    key: str  # phrase key; "" for a clinician's free text
    text: str
    trace: tuple[str, ...]  # fact ids (SummaryFacts.facts, plus notice/tile/clinician fields)
    generated: bool = True  # False: typed by a clinician, shown as written


@dataclass(frozen=True)
class Section:
    key: str
    heading: str
    sentences: tuple[Sentence, ...]

    def body(self) -> str:
        """The sentences one per line, as "- " bullets in list sections (also Markdown)."""
        bullet = "- " if self.key in LIST_SECTIONS else ""
        return "\n".join(bullet + s.text for s in self.sentences)


@dataclass(frozen=True)
class Tile:
    """The picture shown under "your tumour looks like this"."""

    path: Path
    own: bool  # the patient's own tile (True) or the nearest reference from the index


@dataclass(frozen=True)
class Summary:
    lang: str
    title: str
    intro: Sentence
    sections: tuple[Section, ...]
    disclaimer: Sentence
    draft_note: str  # the bank's "not yet approved" line, shown under DRAFT_MARK
    tile: Tile | None
    facts: tuple[tuple[str, str], ...]  # fact id -> description, for the clinician's trace

    def sentences(self) -> tuple[Sentence, ...]:
        return (self.intro, *(s for sec in self.sections for s in sec.sentences), self.disclaimer)

    def generated_text(self) -> str:
        """The phrase-bank sentences only, one per line (what readability is measured on)."""
        return "\n".join(s.text for s in self.sentences() if s.generated)

    def to_text(self, draft: bool = False) -> str:
        """Plain text: title in capitals, sections with their headings, disclaimer."""
        return self._lines(draft, markdown=False)

    def to_markdown(self, draft: bool = False) -> str:
        return self._lines(draft, markdown=True)

    def _lines(self, draft: bool, markdown: bool) -> str:
        title = f"# {self.title}" if markdown else self.title.upper()
        out = [DRAFT_MARK, self.draft_note, ""] if draft else []
        out += [title, "", self.intro.text, ""]
        for sec in self.sections:
            out += [f"## {sec.heading}" if markdown else sec.heading, "", sec.body(), ""]
        out.append(self.disclaimer.text)
        if draft:
            out += ["", DRAFT_MARK]
        return "\n".join(out) + "\n"


def _option_sentences(o: TreatmentOption, bank: PhraseBank, lang: str) -> list[tuple[str, str]]:
    """(key, text) pairs for one treatment option."""
    if o.category == "targeted_therapy" and o.gene:
        drugs = ", ".join(drug_name(d, lang) for d in o.drugs)
        return [
            (
                "option.targeted_therapy.gene",
                bank.phrase("option.targeted_therapy.gene", gene=o.gene),
            ),
            (
                "option.targeted_therapy.drugs",
                bank.phrase("option.targeted_therapy.drugs", drugs=drugs),
            ),
        ]
    key = f"option.{o.category}" + (f".{o.variant}" if o.variant else "")
    return [(key, bank.phrase(key))]


def render(facts: SummaryFacts, bank: PhraseBank, tile: Tile | None = None) -> Summary:
    """The summary of `facts` in the bank's language; every sentence traced."""
    f, lang = facts.input, bank.lang
    sections: dict[str, list[Sentence]] = {k: [] for k in SECTIONS}

    def say(section: str, key: str, trace: tuple[str, ...], **slots: str) -> None:
        sections[section].append(Sentence(section, key, bank.phrase(key, **slots), trace))

    # About your cancer
    say("diagnosis", "diagnosis", ("cancer_type",), cancer=bank.phrase(f"type.{f.cancer_type}"))
    say("diagnosis", f"about.{f.cancer_type}", ("cancer_type",))
    if f.subtype:
        say("diagnosis", "subtype", ("subtype",), subtype=bank.phrase(f"subtype.{f.subtype}"))
    if f.stage:
        say("diagnosis", "stage.scale", ("stage",))
        say("diagnosis", f"stage.{f.stage}", ("stage",))
    else:
        say(
            "diagnosis",
            "stage.unstaged" if f.cancer_type == "GBM" else "stage.unknown",
            ("cancer_type",),
        )
    if f.grade:
        say("diagnosis", f"grade.{f.grade}", ("grade",))

    # Test results: biomarkers, then drivers that open a targeted option, then the rest
    markers = tuple(f"biomarker:{b}" for b, _ in f.biomarkers)
    drivers = tuple(dict.fromkeys(f"driver:{d.gene}" for d in f.drivers))
    if markers or drivers:
        say("tests", "tests.intro", markers + drivers)
        for name, status in f.biomarkers:
            say("tests", f"biomarker.{name}.{status}", (f"biomarker:{name}",))
        explained = {"driver:ERBB2"} if ("HER2", "positive") in f.biomarkers else set()
        for o in facts.options:
            genes = [b for b in o.basis if b.startswith("driver:") and b not in explained]
            if o.gene and genes:
                say("tests", "driver.actionable", tuple(genes), gene=o.gene)
                explained.update(genes)
        if rest := tuple(d for d in drivers if d not in explained):
            say("tests", "driver.other", rest)
    else:
        say("tests", "tests.none", ("cancer_type",))

    # Treatment options by guideline category
    say("treatment", "treatment.intro", ("cancer_type",))
    for o in facts.options:
        for key, text in _option_sentences(o, bank, lang):
            sections["treatment"].append(Sentence("treatment", key, text, o.basis))
    say("treatment", "treatment.decide", ("cancer_type",))

    if tile is not None:
        say("image", "image.caption_own" if tile.own else "image.caption_reference", ("tile",))
    for item in facts.next_steps:
        say("next", item.key, item.basis)
    for item in facts.questions:
        say("questions", item.key, item.basis)
    for field, intro in (("clinician_note", "clinician"), ("prognosis", "prognosis")):
        text = getattr(facts, field)
        if text:
            say(intro, f"{intro}.intro", (field,))
            sections[intro].append(Sentence(intro, "", text, (field,), generated=False))

    # Words to know: each glossary term once, traced like the first sentence that used it
    first_use: dict[str, tuple[str, ...]] = {}
    for key in SECTIONS[:-1]:
        for s in sections[key]:
            for term in glossary_terms(s.key):
                first_use.setdefault(term, s.trace)
    for term, trace in first_use.items():
        word, definition = bank.term(term)
        say("words", "glossary.entry", trace, term=word, definition=definition)

    fact_map = facts.fact_map()
    fact_map[NOTICE_FACT] = "fixed notice of every summary"
    if tile is not None:
        kind = "the patient's own tile" if tile.own else "the nearest reference tile"
        fact_map["tile"] = f"image: {kind} ({tile.path.name})"
    for field in ("clinician_note", "prognosis"):
        if getattr(facts, field):
            fact_map[field] = f"{field.replace('_', ' ')}: free text entered by a clinician"
    return Summary(
        lang=lang,
        title=bank.phrase("title"),
        intro=Sentence("intro", "intro", bank.phrase("intro"), (NOTICE_FACT,)),
        sections=tuple(
            Section(k, bank.phrase(f"section.{k}"), tuple(v)) for k, v in sections.items() if v
        ),
        disclaimer=Sentence("disclaimer", "disclaimer", bank.phrase("disclaimer"), (NOTICE_FACT,)),
        draft_note=bank.phrase("draft_note"),
        tile=tile,
        facts=tuple(fact_map.items()),
    )
