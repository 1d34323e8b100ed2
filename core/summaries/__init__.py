"""Plain-language patient summaries: the facts of a case and their phrase-bank rendering.

Readability (`core.summaries.readability`, also `python -m` for the report), PDF export
(`core.summaries.pdf`, fpdf2) and speech (`core.summaries.audio`, espeak-ng) are imported
from their own modules, so rendering a summary does not load them.
"""

from core.summaries.facts import (
    TREATMENT_CATEGORIES,
    Driver,
    FactsInput,
    SummaryFacts,
    TreatmentOption,
    derive_facts,
    facts_from_case,
)
from core.summaries.render import PhraseBank, Sentence, Summary, Tile, render

__all__ = [
    "TREATMENT_CATEGORIES",
    "Driver",
    "FactsInput",
    "PhraseBank",
    "Sentence",
    "Summary",
    "SummaryFacts",
    "Tile",
    "TreatmentOption",
    "derive_facts",
    "facts_from_case",
    "render",
]
