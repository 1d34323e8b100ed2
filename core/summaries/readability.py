"""Readability of patient summaries, per language, by the published formula of each language.

| lang | formula | grade |
|---|---|---|
| en | Flesch-Kincaid grade (Kincaid et al. 1975): 0.39 ASL + 11.8 ASW - 15.59 | itself |
| es | Fernández-Huerta (1959), as corrected (Law 2011): 206.84 - 1.02 ASL - 60 ASW | Flesch |
| pt | Flesch adapted by Martins et al. (1996): 248.835 - 1.015 ASL - 84.6 ASW | Martins bands |
| fr | Kandel & Moles (1958): 207 - 1.015 ASL - 73.6 ASW | Flesch |
| de | 1. Wiener Sachtextformel (Bamberger & Vanecek 1984) | itself |
| sw, hi | no validated formula: proxies (words per sentence, syllables per word) | none |

ASL is words per sentence, ASW syllables per word. German also gets Amstad's (1978) Flesch
adaptation, 180 - ASL - 58.5 ASW, as a second opinion.

Scores become grades through the tables their authors used. Fernández-Huerta and Kandel-Moles
kept Flesch's (1948) table: 90-100 grade 5, 80-90 grade 6, 70-80 grade 7, 60-70 grades 8-9,
50-60 grades 10-12, 30-50 college, below 30 graduate; so "grade 6 or below" means a score of at
least 80. Martins et al. give bands of several grades (75-100: 1st-4th grade, 50-75: 5th-8th,
25-50: high school, 0-25: university); inside a band the grade is interpolated linearly, so
grade 6 is an index of about 66.7. These are conversions of published tables, not validated
grade formulas, and are reported as such.

Syllables are counted by rule, not by dictionary (no hyphenation dictionary is shipped):
vowel groups with each language's diphthong and silent-letter rules for the Latin-script
languages; for Swahili, whose syllables are open, the number of vowels; for Hindi, the vowel
signs plus independent vowels (the inherent vowel of a bare consonant is not counted, so Hindi
counts are a lower bound), at least one per word.

`python -m core.summaries.readability` prints the table in docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

GRADE_TARGET = 6.0  # patient-education guidance: 6th-grade reading level or below

# Documented bounds for the languages without a formula (sw, hi). Sentences: at most 10 words
# on average, as in the summaries of the formula languages that meet grade 6 (8.3-9.3 words;
# general prose has 17-22). Words: at most 10% more syllables per word than general prose of
# the same language, the 1004 FLORES-200 rows of assets/parallel (sw 2.61, hi 1.47 by the
# counters below); see docs/evaluation.md.
PROXY_MAX_WORDS_PER_SENTENCE = 10.0
PROXY_REFERENCE_SYLLABLES_PER_WORD: Mapping[str, float] = MappingProxyType({"sw": 2.61, "hi": 1.47})
PROXY_MAX_SYLLABLES_PER_WORD: Mapping[str, float] = MappingProxyType(
    {lang: round(1.1 * v, 2) for lang, v in PROXY_REFERENCE_SYLLABLES_PER_WORD.items()}
)

_SENTENCE_END = re.compile(r"[.!?\u0964\u0965]+(?=\s|$)|\n+")
# A word: letters, digits, Devanagari (vowel signs and virama are combining marks, which `\w`
# leaves out), apostrophes and inner hyphens.
_WORD = re.compile(r"[\w\u0900-\u097F]+(?:['’-][\w\u0900-\u097F]+)*")
_LETTER = re.compile(r"[^\W\d_]|[\u0900-\u097F]")

_EN_SILENT_END = re.compile(r"(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$")
_EN_VOWELS = re.compile(r"[aeiouy]{1,2}")
_ES_SILENT_U = re.compile(r"(?<=[qg])u(?=[eéií])")
# Silent endings after a consonant: e, es, and the verb ending -ent (not the -ment of nouns and
# adverbs such as "médicament", "lentement", which is pronounced).
_FR_SILENT_END = re.compile(r"(?<=[^aeiouyàâéèêëîïôûùüœæ])(?:e|es|(?<!m)ent)$")
_VOWEL_GROUPS: Mapping[str, re.Pattern[str]] = MappingProxyType({
    "es": re.compile(r"[aeiouáéíóúü]+|y$"),
    "pt": re.compile(r"[aeiouáéíóúâêôãõàü]+"),
    "fr": re.compile(r"[aeiouyàâéèêëîïôûùüœæ]+"),
    "de": re.compile(r"[aeiouyäöü]+"),
})  # fmt: skip
# Vowels that stay separate syllables when adjacent (hiatus), e.g. Spanish "le-er", Portuguese
# "do-en-ça"; weak vowels (i, u) glide into a diphthong with their neighbour.
_STRONG: Mapping[str, str] = MappingProxyType({"es": "aeoáéóíú", "pt": "aeoáéóíúâêô"})
_DEVANAGARI_VOWELS = re.compile(
    r"[\u0904-\u0914\u0960\u0961\u093E-\u094C\u0962\u0963\u0955-\u0957]"
)


def _syllables_en(w: str) -> int:
    if len(w) <= 3:
        return 1
    w = _EN_SILENT_END.sub("", w)
    w = w.removeprefix("y")
    return max(1, len(_EN_VOWELS.findall(w)))


def _hiatus_syllables(lang: str) -> Callable[[str], int]:
    strong = _STRONG[lang]

    def count(w: str) -> int:
        if lang == "es":
            w = _ES_SILENT_U.sub("", w)
        n = 0
        for group in _VOWEL_GROUPS[lang].findall(w):
            # ã/õ + e/o is one nasal diphthong (mãe, põe, não)
            g = re.sub(r"[ãõ][eo]", "ã", group) if lang == "pt" else group
            n += 1 + sum(a in strong and b in strong for a, b in zip(g, g[1:], strict=False))
        return max(1, n)

    return count


def _syllables_fr(w: str) -> int:
    return max(1, len(_VOWEL_GROUPS["fr"].findall(_FR_SILENT_END.sub("", w))))


def _syllables_de(w: str) -> int:
    return max(1, len(_VOWEL_GROUPS["de"].findall(w)))


def _syllables_sw(w: str) -> int:
    return max(1, sum(c in "aeiou" for c in w))


def _syllables_hi(w: str) -> int:
    return max(1, len(_DEVANAGARI_VOWELS.findall(w)))


SYLLABLE_COUNTERS: Mapping[str, Callable[[str], int]] = MappingProxyType({
    "en": _syllables_en, "es": _hiatus_syllables("es"), "pt": _hiatus_syllables("pt"),
    "fr": _syllables_fr, "de": _syllables_de, "sw": _syllables_sw, "hi": _syllables_hi,
})  # fmt: skip


def count_syllables(word: str, lang: str) -> int:
    """Syllables of one word by the rules of `lang` (see the module docstring)."""
    return SYLLABLE_COUNTERS[lang](unicodedata.normalize("NFC", word).lower())


@functools.lru_cache(maxsize=65536)
def _word_counts(word: str, lang: str) -> tuple[int, int]:
    """(syllables, letters) of a word; summaries repeat their words, so this is cached."""
    return count_syllables(word, lang), len(_LETTER.findall(word))


@dataclass(frozen=True)
class TextStats:
    sentences: int
    words: int
    syllables: int
    letters: int
    long_words: int  # more than 6 letters (Wiener Sachtextformel's IW)
    polysyllables: int  # 3 or more syllables
    monosyllables: int

    @property
    def words_per_sentence(self) -> float:
        return self.words / max(self.sentences, 1)

    @property
    def syllables_per_word(self) -> float:
        return self.syllables / max(self.words, 1)

    @property
    def letters_per_word(self) -> float:
        return self.letters / max(self.words, 1)


def split_sentences(text: str) -> list[str]:
    """Sentences of a text: ends at . ! ? । ॥ before a space, or at a line break."""
    return [s.strip() for s in _SENTENCE_END.split(text) if _LETTER.search(s)]


def text_stats(text: str, lang: str) -> TextStats:
    """Counts of sentences, words and syllables of `text` in `lang`."""
    if lang not in SYLLABLE_COUNTERS:
        raise ValueError(f"no readability rules for language {lang!r}")
    text = unicodedata.normalize("NFC", text)
    counts = [c for w in _WORD.findall(text) if (c := _word_counts(w, lang))[1]]
    syl = [n for n, _ in counts]
    return TextStats(
        sentences=len(split_sentences(text)),
        words=len(counts),
        syllables=sum(syl),
        letters=sum(n for _, n in counts),
        long_words=sum(n > 6 for _, n in counts),
        polysyllables=sum(n >= 3 for n in syl),
        monosyllables=sum(n == 1 for n in syl),
    )


# (lowest score, highest score, grade at the highest score, grade at the lowest score); scores
# are clamped to 0-100 first, so the top and bottom bands are closed.
Band = tuple[float, float, float, float]
FLESCH_TABLE: tuple[Band, ...] = (
    (90, 100, 5, 5), (80, 90, 6, 6), (70, 80, 7, 7), (60, 70, 8, 9), (50, 60, 10, 12),
    (30, 50, 13, 16), (0, 30, 17, 17),
)  # fmt: skip
MARTINS_BANDS: tuple[Band, ...] = (
    (75, 100, 1, 4),
    (50, 75, 5, 8),
    (25, 50, 9, 11),
    (0, 25, 12, 16),
)


def band_grade(score: float, bands: Sequence[Band]) -> float:
    """The grade a score falls in; linear inside a band that spans several grades."""
    s = min(max(score, 0.0), 100.0)
    for lo, hi, g_hi, g_lo in bands:
        if s >= lo:
            return round(g_lo + (g_hi - g_lo) * (s - lo) / (hi - lo), 2)
    raise ValueError(f"bands do not cover score {score}")


@dataclass(frozen=True)
class Readability:
    lang: str
    formula: str  # e.g. "Flesch-Kincaid grade", "Fernández-Huerta", "proxy"
    score: float | None  # the formula's own value (an ease score or a grade); None for proxies
    grade: float | None  # US school grade where the formula gives or maps to one
    stats: TextStats
    secondary: tuple[tuple[str, float], ...] = ()  # other formulas reported alongside

    @property
    def meets_target(self) -> bool:
        """Grade at most GRADE_TARGET, or for proxy languages within the documented bounds."""
        if self.grade is not None:
            return self.grade <= GRADE_TARGET
        s = self.stats
        return (
            s.words_per_sentence <= PROXY_MAX_WORDS_PER_SENTENCE
            and s.syllables_per_word <= PROXY_MAX_SYLLABLES_PER_WORD[self.lang]
        )


def readability(text: str, lang: str) -> Readability:
    """The readability of `text` by the formula of `lang` (see the module docstring)."""
    s = text_stats(text, lang)
    asl, asw = s.words_per_sentence, s.syllables_per_word
    pct = 100 / max(s.words, 1)
    match lang:
        case "en":
            grade = 0.39 * asl + 11.8 * asw - 15.59
            return Readability(lang, "Flesch-Kincaid grade", round(grade, 2), round(grade, 2), s)
        case "es":
            score = 206.84 - 1.02 * asl - 60 * asw
            return Readability(
                lang, "Fernández-Huerta", round(score, 1), band_grade(score, FLESCH_TABLE), s
            )
        case "pt":
            score = 248.835 - 1.015 * asl - 84.6 * asw
            return Readability(
                lang,
                "Flesch (Martins et al. 1996)",
                round(score, 1),
                band_grade(score, MARTINS_BANDS),
                s,
            )
        case "fr":
            score = 207 - 1.015 * asl - 73.6 * asw
            return Readability(
                lang, "Kandel-Moles", round(score, 1), band_grade(score, FLESCH_TABLE), s
            )
        case "de":
            wstf = (
                0.1935 * s.polysyllables * pct + 0.1672 * asl + 0.1297 * s.long_words * pct
                - 0.0327 * s.monosyllables * pct - 0.875
            )  # fmt: skip
            amstad = round(180 - asl - 58.5 * asw, 1)
            return Readability(
                lang,
                "Wiener Sachtextformel",
                round(wstf, 2),
                round(wstf, 2),
                s,
                (("Amstad", amstad),),
            )
        case "sw" | "hi":
            return Readability(lang, "proxy", None, None, s)
    raise ValueError(f"no readability rules for language {lang!r}")


# ------------------------------------------------------------------------------ the report


def report_rows() -> list[dict[str, object]]:
    """Readability per language over summaries of every subtype x stage (GBM unstaged).

    Biomarkers and drivers come from a synthetic profile of each subtype drawn with a fixed
    seed (`coverage_inputs`), so every biomarker phrase and common targeted options occur.
    """
    from core.knowledge import KnowledgeBase
    from core.summaries.facts import coverage_inputs, derive_facts
    from core.summaries.render import PhraseBank, render

    kb = KnowledgeBase.load()
    all_facts = [derive_facts(f, kb) for f in coverage_inputs()]
    rows = []
    for lang in SYLLABLE_COUNTERS:
        bank = PhraseBank.load(lang)
        results = [readability(render(f, bank).generated_text(), lang) for f in all_facts]
        scores = [r.score for r in results if r.score is not None]
        grades = [r.grade for r in results if r.grade is not None]
        stats = [r.stats for r in results]
        rows.append({
            "lang": lang,
            "formula": results[0].formula,
            "summaries": len(results),
            "score_min": min(scores, default=None),
            "score_max": max(scores, default=None),
            "grade_mean": statistics.fmean(grades) if grades else None,
            "grade_max": max(grades, default=None),
            "words_per_sentence": statistics.fmean(s.words_per_sentence for s in stats),
            "syllables_per_word": statistics.fmean(s.syllables_per_word for s in stats),
            "words": statistics.fmean(s.words for s in stats),
            "meets_target": sum(r.meets_target for r in results),
        })  # fmt: skip
    return rows


def _fmt(v: object, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def markdown_report() -> str:
    lines = [
        "| lang | formula | summaries | score (min-max) | mean grade | max grade"
        " | words/sentence | syllables/word | words | meet target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report_rows():
        score = "—" if r["score_min"] is None else f"{r['score_min']:.1f}-{r['score_max']:.1f}"
        lines.append(
            f"| {r['lang']} | {r['formula']} | {r['summaries']} | {score}"
            f" | {_fmt(r['grade_mean'])} | {_fmt(r['grade_max'])}"
            f" | {_fmt(r['words_per_sentence'])} | {_fmt(r['syllables_per_word'], 2)}"
            f" | {_fmt(r['words'], 0)} | {r['meets_target']}/{r['summaries']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    print(markdown_report())


if __name__ == "__main__":
    main()
