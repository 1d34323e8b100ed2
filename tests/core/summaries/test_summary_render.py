"""Rendering: complete phrase banks, every language x type x stage, traces, no English leaks,
no generated numbers, clinician free text, glossary, drug names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.data.schema import DRIVER_GENES, LANGUAGES
from core.errors import ConfigError
from core.knowledge import KnowledgeBase
from core.summaries.facts import (
    BIOMARKER_STATUS,
    Driver,
    FactsInput,
    SummaryFacts,
    coverage_inputs,
    derive_facts,
)
from core.summaries.render import BANK_DIR, PhraseBank, Summary, Tile, placeholders, render

NON_ENGLISH = tuple(lang for lang in LANGUAGES if lang != "en")
# English function words that are not words of any other summary language (so "a", "in",
# "die", "will", "as", "do", "no", "me", "or", "but", "on", "an", "am" are left out).
ENGLISH_FUNCTION_WORDS = frozenset(
    "the and of your you with may this that for is are can what which should about from have "
    "has be it not if when there they their these those been would could into our we".split()
)


LATIN_NAME = r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"


@pytest.fixture(scope="module")
def all_facts() -> list[SummaryFacts]:
    """Every subtype x stage (GBM unstaged), plus every biomarker status once."""
    kb = KnowledgeBase.load()
    every_status = [tuple((b, s[i]) for b, s in BIOMARKER_STATUS.items()) for i in (0, 1)]
    extra = [
        *(FactsInput("BRCA", "BRCA_LUMB", "II", 2, 40, markers) for markers in every_status),
        FactsInput("KIRC", drivers=(Driver("VHL", "Q73*"),)),  # no subtype, stage or markers
        FactsInput("LIHC"),  # nothing tested
    ]
    return [derive_facts(f, kb) for f in (*coverage_inputs(), *extra)]


@pytest.fixture(scope="module")
def rendered(all_facts: list[SummaryFacts]) -> dict[str, list[Summary]]:
    return {lang: [render(f, PhraseBank.load(lang)) for f in all_facts] for lang in LANGUAGES}


def test_every_bank_has_the_english_keys_and_slots() -> None:
    en = PhraseBank.load("en")
    for lang in NON_ENGLISH:
        bank = PhraseBank.load(lang)
        assert bank.phrases.keys() == en.phrases.keys(), lang
        assert bank.glossary.keys() == en.glossary.keys(), lang
        for key, text in en.phrases.items():
            assert placeholders(bank.phrases[key]) == placeholders(text), (lang, key)
        assert all(t and d for t, d in bank.glossary.values()), lang


def test_every_language_renders_every_type_and_stage(rendered: dict[str, list[Summary]]) -> None:
    used: set[str] = set()
    for lang, summaries in rendered.items():
        for s in summaries:
            assert s.lang == lang and s.sections[0].key == "diagnosis"
            used.update(x.key for x in s.sentences())
    # Every sentence phrase of the bank is reachable (no dead or misspelled keys); the rest are
    # headings, slot fillers (type/subtype names) and export-only lines.
    slot_or_fixed = re.compile(r"(type|subtype|section)\..+|title|draft_note|approved_by")
    sentence_keys = {k for k in PhraseBank.load("en").phrases if not slot_or_fixed.fullmatch(k)}
    assert sentence_keys - used - {"image.caption_own", "image.caption_reference",
                                   "clinician.intro", "prognosis.intro"} == set()  # fmt: skip


def test_every_sentence_is_traced_to_known_facts(rendered: dict[str, list[Summary]]) -> None:
    for summaries in rendered.values():
        for s in summaries:
            known = dict(s.facts)
            for sentence in s.sentences():
                assert sentence.trace and set(sentence.trace) <= known.keys(), sentence


def _names(all_facts: list[SummaryFacts]) -> set[str]:
    """Tokens allowed in any script: genes, biomarker names, drug names, subtype letters."""
    en = PhraseBank.load("en")
    drugs = {d for f in all_facts for o in f.options for d in o.drugs}
    tokens = {*DRIVER_GENES, "HER2", "ER", "PR", "RE", "RP", "VPH", "A", "B", "C"}
    tokens |= {t for term, _ in en.glossary.values() for t in re.findall(r"[A-Za-z0-9-]+", term)}
    return {t.lower() for t in tokens} | {w for d in drugs for w in re.findall(r"[a-z]+", d)}


def test_no_english_leaks_into_other_languages(
    rendered: dict[str, list[Summary]], all_facts: list[SummaryFacts]
) -> None:
    names = _names(all_facts)
    for lang in NON_ENGLISH:
        for s in rendered[lang]:
            words = {w.lower() for w in re.findall(r"[A-Za-z]+", s.generated_text())}
            assert not words & ENGLISH_FUNCTION_WORDS, (lang, words & ENGLISH_FUNCTION_WORDS)
            if lang == "hi":  # Devanagari text: every Latin word must be a name
                latin = {t.lower() for t in re.findall(LATIN_NAME, s.generated_text())}
                assert latin <= names | {"pd-l1", "ki-67", "msi"}, latin - names


def test_no_generated_numbers_beyond_the_stage(rendered: dict[str, list[Summary]]) -> None:
    for summaries in rendered.values():
        for s in summaries:
            for sentence in s.sentences():
                assert "%" not in sentence.text
                # Digits only inside names (HER2, Ki-67, BRCA1) or in the stage sentences.
                standalone = re.findall(r"(?<![\w-])\d+(?:[.,]\d+)?(?![\w-])", sentence.text)
                if standalone:
                    assert sentence.key.startswith("stage."), sentence


def test_prognosis_and_notes_only_when_a_clinician_writes_them(
    all_facts: list[SummaryFacts],
) -> None:
    bank = PhraseBank.load("pt")
    plain = render(all_facts[0], bank)
    assert not {"clinician", "prognosis"} & {sec.key for sec in plain.sections}
    edited = render(all_facts[0].with_free_text("Volte na terça.", "Conversamos sobre isso."), bank)
    free = [s for s in edited.sentences() if not s.generated]
    assert [(s.section, s.text, s.trace) for s in free] == [
        ("clinician", "Volte na terça.", ("clinician_note",)),
        ("prognosis", "Conversamos sobre isso.", ("prognosis",)),
    ]
    assert "Volte na terça." not in edited.generated_text()


def test_glossary_drug_names_and_picture(all_facts: list[SummaryFacts], tmp_path: Path) -> None:
    her2 = next(f for f in all_facts if ("HER2", "positive") in f.input.biomarkers
                and any(o.gene == "HER2" for o in f.options))  # fmt: skip
    pt = render(her2, PhraseBank.load("pt"))
    words = next(sec for sec in pt.sections if sec.key == "words")
    assert any(s.text.startswith("HER2: ") for s in words.sentences)
    assert "trastuzumabe" in pt.generated_text()  # the lexicon's Portuguese name
    hi = render(her2, PhraseBank.load("hi"))
    assert "ट्रास्टुज़ुमैब" in hi.generated_text()
    tile = Tile(tmp_path / "t.jpg", own=False)
    sw = render(her2, PhraseBank.load("sw"), tile)
    (caption,) = [s for s in sw.sentences() if s.section == "image"]
    assert caption.key == "image.caption_reference" and caption.trace == ("tile",)


def test_a_missing_phrase_is_a_config_error(all_facts: list[SummaryFacts], tmp_path: Path) -> None:
    data = json.loads((BANK_DIR / "sw.json").read_text(encoding="utf-8"))
    del data["phrases"]["stage.IV"]
    (tmp_path / "sw.json").write_text(json.dumps(data), encoding="utf-8")
    broken = PhraseBank.load("sw", tmp_path)
    stage_iv = next(f for f in all_facts if f.input.stage == "IV")
    with pytest.raises(ConfigError, match="stage.IV"):
        render(stage_iv, broken)
