"""Guess a note's language among the workbench's languages, offline and cheaply.

Devanagari script means Hindi; otherwise the language whose lexicon terms and common
function words cover the most of the text wins. Returns "" when nothing is recognisable, so
callers can say so instead of guessing.
"""

from __future__ import annotations

import re

from core.data.lexicon import Lexicon
from core.data.schema import LANGUAGES

# A few very common function words per Latin-script language; enough to separate them.
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and with of for was is no in on at to from patient".split()),
    "pt": frozenset("de do da com e não em para paciente sem foi os as um uma".split()),
    "es": frozenset("de del la el con y no en para paciente sin fue los las un una".split()),
    "fr": frozenset("de du la le avec et pas en pour patient sans les des une un est".split()),
    "de": frozenset("der die das mit und nicht ein eine für patient ohne bei ist von".split()),
    "sw": frozenset("na ya wa kwa ni la za mgonjwa hakuna katika cha hana ana".split()),
}
_WORD = re.compile(r"\w+", re.UNICODE)


def detect_language(text: str, lexicon: Lexicon) -> str:
    """The most likely language code of `text` in LANGUAGES, or "" when none is evident."""
    if any("\u0900" <= ch <= "\u097f" for ch in text):
        return "hi"
    words = [w.casefold() for w in _WORD.findall(text)]
    if not words:
        return ""
    scores: dict[str, float] = {}
    for lang in LANGUAGES:
        if lang == "hi":
            continue
        function_hits = sum(w in _FUNCTION_WORDS.get(lang, ()) for w in words)
        # Entities found through this language's own terms (English is always tried too).
        own_terms = sum(1 for m in lexicon.match(text, lang) if not _is_english_term(m, lexicon))
        scores[lang] = function_hits + 2 * own_terms
    best = max(scores, key=lambda k: (scores[k], k == "en"))
    return best if scores[best] > 0 else ""


def _is_english_term(match, lexicon: Lexicon) -> bool:
    english = lexicon.concept(match.concept_id).terms.get("en", ())
    return match.text.casefold() in {t.casefold() for t in english}
